/**
 * Limits an operator sets on one account or one API key through the admin API (`SetLimits`), overriding the
 * tier defaults: requests, input and output tokens per minute (with their bursts), concurrent requests, and, for
 * an account, a spend cap (a key's spend cap stays in `api_keys.spend_cap_micro_usd`, where `IssueApiKey` puts
 * it). A row belongs to exactly one account or one key; a null column means "not overridden". Upper bounds are
 * enforced by the admin API (they are settings that may move); the table only refuses what is never meaningful.
 * Also an index for the money ceilings' sum of all credits (see `src/ledger/credit.ts`).
 * Uses `Kysely<any>` and never imports `src/`, like every migration.
 */
import { sql, type Kysely } from "kysely";

/* eslint-disable @typescript-eslint/no-explicit-any */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE limit_overrides (
      account_id text REFERENCES accounts(id),
      key_id text REFERENCES api_keys(id),
      requests_per_min integer CHECK (requests_per_min > 0),
      requests_burst integer CHECK (requests_burst > 0),
      input_tokens_per_min bigint CHECK (input_tokens_per_min > 0),
      input_tokens_burst bigint CHECK (input_tokens_burst > 0),
      output_tokens_per_min bigint CHECK (output_tokens_per_min > 0),
      output_tokens_burst bigint CHECK (output_tokens_burst > 0),
      max_concurrent_requests integer CHECK (max_concurrent_requests > 0),
      spend_cap_micro_usd bigint CHECK (spend_cap_micro_usd >= 0),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((account_id IS NULL) <> (key_id IS NULL)),
      CHECK (key_id IS NULL OR spend_cap_micro_usd IS NULL)
    );
    CREATE UNIQUE INDEX limit_overrides_account ON limit_overrides (account_id) WHERE account_id IS NOT NULL;
    CREATE UNIQUE INDEX limit_overrides_key ON limit_overrides (key_id) WHERE key_id IS NOT NULL;

    -- Credits are few (operator actions) among many entries: the sum of all credits, checked against a ceiling
    -- on every new credit, is an index-only scan of this small index instead of a scan of every entry.
    CREATE INDEX ledger_entries_credits ON ledger_entries (id) INCLUDE (amount_micro_usd) WHERE kind = 'credit';
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX ledger_entries_credits; DROP TABLE limit_overrides;`.execute(db);
}
