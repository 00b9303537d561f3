/**
 * Model aliases on PostgreSQL (`model_aliases`): one row per public model name, with the build it routes to and,
 * during a rollout, the previous build. Rows are few (at most {@link MAX_MODEL_ALIASES}) and written by operators;
 * each process reads them all at start-up and after each change it serves (into an `AliasBook`), never on the
 * request path.
 */
import { sql, type Kysely } from "kysely";
import { CoordinatorError } from "../errors/coordinator-error.js";
import type { ModelAlias } from "../models/model-aliases.js";
import type { Database } from "./schema.js";

/** Most aliases stored at once (README "Limits"): setting one more is refused; changing an existing one is not. */
export const MAX_MODEL_ALIASES = 256;

/** An alias as stored, with when it was last set. */
export interface StoredModelAlias extends ModelAlias {
  /** When the alias was last set, Unix milliseconds. */
  updatedAtUnixMs: number;
}

export interface ModelAliasStore {
  /** Every alias, sorted by alias. */
  list(): Promise<StoredModelAlias[]>;
  /**
   * Creates or replaces an alias (an absent `previousBuild` clears it). Names are the caller's to check. Throws
   * `capacity_exhausted` when `a.alias` is new and `maxAliases` already exist.
   */
  set(a: ModelAlias): Promise<void>;
  /** Removes an alias; true if it existed. */
  delete(alias: string): Promise<boolean>;
}

export interface ModelAliasStoreOptions {
  /** Most aliases stored at once. Default {@link MAX_MODEL_ALIASES}. */
  maxAliases?: number;
}

export function createModelAliasStore(db: Kysely<Database>, o: ModelAliasStoreOptions = {}): ModelAliasStore {
  const maxAliases = o.maxAliases ?? MAX_MODEL_ALIASES;
  return {
    async list() {
      const rows = await db
        .selectFrom("model_aliases")
        .select(["alias", "build", "previous_build", "updated_at"])
        .orderBy("alias")
        .execute();
      return rows.map((r) => ({
        alias: r.alias,
        build: r.build,
        ...(r.previous_build !== null ? { previousBuild: r.previous_build } : {}),
        updatedAtUnixMs: r.updated_at.getTime(),
      }));
    },
    set: (a) =>
      db.transaction().execute(async (trx) => {
        // SHARE ROW EXCLUSIVE conflicts with itself and with every write, not with reads: two sets of new aliases
        // cannot both count `maxAliases - 1` and both insert. Writes are rare operator actions.
        await sql`LOCK TABLE model_aliases IN SHARE ROW EXCLUSIVE MODE`.execute(trx);
        const exists = await trx
          .selectFrom("model_aliases")
          .select("alias")
          .where("alias", "=", a.alias)
          .executeTakeFirst();
        if (!exists) {
          const { n } = await trx
            .selectFrom("model_aliases")
            .select((eb) => eb.fn.countAll<bigint>().as("n"))
            .executeTakeFirstOrThrow();
          if (Number(n) >= maxAliases) {
            throw new CoordinatorError(
              "capacity_exhausted",
              `at most ${maxAliases} model aliases may exist; delete one first`,
              { param: "alias" },
            );
          }
        }
        const row = { build: a.build, previous_build: a.previousBuild ?? null, updated_at: sql<Date>`now()` };
        await trx
          .insertInto("model_aliases")
          .values({ alias: a.alias, ...row })
          .onConflict((oc) => oc.column("alias").doUpdateSet(row))
          .execute();
      }),
    async delete(alias) {
      const r = await db.deleteFrom("model_aliases").where("alias", "=", alias).executeTakeFirst();
      return r.numDeletedRows > 0n;
    },
  };
}
