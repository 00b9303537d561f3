/**
 * What outside testing of the trust edges asked of the schema:
 * - token counts are bigint like money, so no provider-reported figure can overflow a column and wedge a batch;
 * - `ledger_quarantine` holds a write that failed deterministically (with its error), so one bad row never
 *   blocks the writes queued behind it;
 * - `provider_identities` binds each machine serial to the account that first registered it and to its Ed25519
 *   public key, under a stable opaque provider id that consumers see instead of the serial.
 * Uses `Kysely<any>` and never imports `src/`, like every migration.
 */
import { sql, type Kysely } from "kysely";

/* eslint-disable @typescript-eslint/no-explicit-any */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE ledger_requests
      ALTER COLUMN prompt_tokens TYPE bigint,
      ALTER COLUMN completion_tokens TYPE bigint,
      ALTER COLUMN reasoning_tokens TYPE bigint;

    CREATE TABLE ledger_quarantine (
      id bigserial PRIMARY KEY,
      op_kind text NOT NULL,
      request_id text,
      -- The operation as JSON text (not jsonb: jsonb refuses the \\u0000 escape a bad string may carry).
      payload text NOT NULL,
      error text NOT NULL,
      sqlstate text,
      created_at timestamptz NOT NULL DEFAULT now(),
      resolved_at timestamptz
    );
    CREATE INDEX ledger_quarantine_open ON ledger_quarantine (id) WHERE resolved_at IS NULL;

    CREATE TABLE provider_identities (
      serial text PRIMARY KEY,
      provider_id text NOT NULL UNIQUE,
      account_id text NOT NULL REFERENCES accounts(id),
      public_key bytea NOT NULL CHECK (octet_length(public_key) = 32),
      token_id text,
      registered_at timestamptz NOT NULL DEFAULT now(),
      last_seen_at timestamptz,
      fenced_at timestamptz,
      fence_reason text
    );
    CREATE INDEX provider_identities_account ON provider_identities (account_id);
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DROP TABLE provider_identities, ledger_quarantine;
    ALTER TABLE ledger_requests
      ALTER COLUMN prompt_tokens TYPE integer,
      ALTER COLUMN completion_tokens TYPE integer,
      ALTER COLUMN reasoning_tokens TYPE integer;
  `.execute(db);
}
