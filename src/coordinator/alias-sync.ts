/**
 * Model aliases (public names → builds) kept in step with the table: loaded at start (or, on a schema still
 * migrating, once it is migrated), replaced at once by a change this process serves, and re-read on an
 * interval for the changes other replicas serve.
 */
import type { Kysely } from "kysely";
import { createModelAliasStore, type ModelAliasStore } from "../ledger/model-alias-store.js";
import type { Database } from "../ledger/schema.js";
import { AliasBook } from "../models/model-aliases.js";
import type { Logger } from "../util/logger.js";

/** How {@link startAliasSync} is wired. */
export interface AliasSyncOptions {
  db: Kysely<Database>;
  /** How often the table is re-read, in ms; 0 = never (only this process's own changes apply). */
  refreshMs: number;
  /** Whether the schema holds the alias table yet: nothing is read until it does. */
  schemaCurrent: () => boolean;
  log: Logger;
}

/** The live alias book and its table. */
export interface AliasSync {
  readonly book: AliasBook;
  readonly store: ModelAliasStore;
  /** Re-reads the table into the book. A failed refresh fails its caller, not the next one. */
  refresh(): Promise<void>;
  /** Stops the interval re-reads. */
  stop(): void;
}

/** Loads the book (empty while the schema is not current) and starts the interval re-reads. */
export async function startAliasSync(o: AliasSyncOptions): Promise<AliasSync> {
  const store = createModelAliasStore(o.db);
  const book = new AliasBook(o.schemaCurrent() ? await store.list() : []);
  // Refreshes run one after another, so the last to finish read the table after every change before it committed.
  let last: Promise<void> = Promise.resolve();
  const refresh = (): Promise<void> =>
    (last = last.catch(() => undefined).then(async () => book.replace(await store.list())));
  // Another replica's alias changes arrive by re-reading the table (a handful of rows) on an interval.
  const timer =
    o.refreshMs > 0
      ? setInterval(() => {
          if (o.schemaCurrent())
            refresh().catch((e) => o.log.warn("model aliases not refreshed", { error: String(e) }));
        }, o.refreshMs).unref()
      : undefined;
  return { book, store, refresh, stop: () => clearInterval(timer) };
}
