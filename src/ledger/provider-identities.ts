/**
 * Provider identities on PostgreSQL: which account a machine serial belongs to (the account whose token first
 * registered it), the machine's Ed25519 public key, the stable opaque id consumers see instead of the serial,
 * and a fence set when the coordinator stopped trusting the machine. Rows are small and read once per
 * registration, never on the request path.
 */
import { randomBytes } from "node:crypto";
import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

export interface ProviderIdentity {
  serial: string;
  /** Opaque, stable across reconnects and restarts; the only provider identifier consumers see. */
  providerId: string;
  accountId: string;
  publicKey: Uint8Array;
  /** Why the machine is fenced (it may not register until its owner re-registers it), or null. */
  fenceReason: string | null;
}

export interface ProviderIdentityStore {
  get(serial: string): Promise<ProviderIdentity | undefined>;
  /**
   * Binds a new serial to `accountId` and `publicKey` unless someone already holds it; returns whichever
   * identity is stored afterwards, so a caller that lost a race sees the winner and refuses. Returns undefined,
   * storing nothing, when the account already owns `maxPerAccount` machines.
   */
  claim(input: {
    serial: string;
    accountId: string;
    publicKey: Uint8Array;
    tokenId: string;
    maxPerAccount: number;
  }): Promise<ProviderIdentity | undefined>;
  /** Records a successful registration (last seen, the token used). */
  seen(serial: string, tokenId: string): Promise<void>;
  /** Fences the machine: registrations are refused until its identity is forgotten. */
  fence(serial: string, reason: string): Promise<void>;
  /**
   * Forgets the identity so the machine can register afresh (the owner's re-registration, or an operator's).
   * With `accountId`, only if that account owns it. True if a row was removed.
   */
  forget(serial: string, accountId?: string): Promise<boolean>;
  /** Identities owned by an account. */
  listByAccount(accountId: string): Promise<ProviderIdentity[]>;
}

/** `prov_` + 20 base32 characters (100 random bits). */
export function newProviderId(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  const bytes = randomBytes(20);
  let out = "prov_";
  for (const b of bytes) out += alphabet[b & 31];
  return out;
}

type Row = {
  serial: string;
  provider_id: string;
  account_id: string;
  public_key: Uint8Array;
  fence_reason: string | null;
};

function fromRow(r: Row): ProviderIdentity {
  return {
    serial: r.serial,
    providerId: r.provider_id,
    accountId: r.account_id,
    publicKey: new Uint8Array(r.public_key),
    fenceReason: r.fence_reason,
  };
}

export function createProviderIdentityStore(db: Kysely<Database>): ProviderIdentityStore {
  const columns = ["serial", "provider_id", "account_id", "public_key", "fence_reason"] as const;
  const store: ProviderIdentityStore = {
    async get(serial) {
      const r = await db
        .selectFrom("provider_identities")
        .select(columns)
        .where("serial", "=", serial)
        .executeTakeFirst();
      return r ? fromRow(r) : undefined;
    },
    async claim(input) {
      // One statement, one round trip per first registration: the account's cap, then the stored row, ours or
      // the one a racing first registration wrote (the no-op update only makes RETURNING return it). An insert
      // then a read let a concurrent forget (ForgetProvider, the owner's DELETE) remove the row in between,
      // failing the registration with an internal error (found by the fuzz suite, test/fuzz/admin-rpcs.test.ts).
      // First registrations of one account racing each other all read the same count, so the cap can be passed
      // by as many as race; serials are still claimed one row each and a loop is stopped.
      const r = await db
        .insertInto("provider_identities")
        .columns(["serial", "provider_id", "account_id", "public_key", "token_id", "last_seen_at"])
        .expression(
          db
            .selectNoFrom([
              sql<string>`${input.serial}::text`.as("serial"),
              sql<string>`${newProviderId()}::text`.as("provider_id"),
              sql<string>`${input.accountId}::text`.as("account_id"),
              sql<Buffer>`${Buffer.from(input.publicKey)}::bytea`.as("public_key"),
              sql<string>`${input.tokenId}::text`.as("token_id"),
              sql<Date>`now()`.as("last_seen_at"),
            ])
            .where((eb) =>
              eb(
                db
                  .selectFrom("provider_identities")
                  .select((c) => c.fn.countAll().as("n"))
                  .where("account_id", "=", input.accountId),
                "<",
                input.maxPerAccount,
              ),
            ),
        )
        .onConflict((oc) => oc.column("serial").doUpdateSet({ serial: (eb) => eb.ref("excluded.serial") }))
        .returning(columns)
        .executeTakeFirst();
      return r ? fromRow(r) : undefined;
    },
    async seen(serial, tokenId) {
      await db
        .updateTable("provider_identities")
        .set({ last_seen_at: new Date(), token_id: tokenId })
        .where("serial", "=", serial)
        .execute();
    },
    async fence(serial, reason) {
      await db
        .updateTable("provider_identities")
        .set({ fenced_at: new Date(), fence_reason: reason.slice(0, 500) })
        .where("serial", "=", serial)
        .execute();
    },
    async forget(serial, accountId) {
      let q = db.deleteFrom("provider_identities").where("serial", "=", serial);
      if (accountId !== undefined) q = q.where("account_id", "=", accountId);
      const r = await q.executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    },
    async listByAccount(accountId) {
      const rows = await db
        .selectFrom("provider_identities")
        .select(columns)
        .where("account_id", "=", accountId)
        .orderBy("serial")
        .execute();
      return rows.map(fromRow);
    },
  };
  return store;
}
