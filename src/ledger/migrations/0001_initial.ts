/**
 * Accounts, keys, provider tokens, prices, and the lease-based ledger (see ../README.md for the design).
 * Migrations use `Kysely<any>` and never import `src/` so they stay valid as the code moves on.
 */
import { sql, type Kysely } from "kysely";

/* eslint-disable @typescript-eslint/no-explicit-any */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE accounts (
      id text PRIMARY KEY,
      name text NOT NULL,
      tier text NOT NULL CHECK (tier IN ('consumer', 'service')),
      platform_fee_bps integer NOT NULL DEFAULT 0 CHECK (platform_fee_bps BETWEEN 0 AND 10000),
      created_at timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO accounts (id, name, tier) VALUES ('platform', 'platform fees', 'service');

    CREATE TABLE api_keys (
      id text PRIMARY KEY,
      account_id text NOT NULL REFERENCES accounts(id),
      key_hash text NOT NULL UNIQUE,
      name text,
      spend_cap_micro_usd bigint CHECK (spend_cap_micro_usd >= 0),
      created_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz
    );

    CREATE TABLE provider_tokens (
      id text PRIMARY KEY,
      account_id text NOT NULL REFERENCES accounts(id),
      token_hash text NOT NULL UNIQUE,
      name text,
      created_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz
    );

    CREATE TABLE model_prices (
      model text PRIMARY KEY,
      input_micro_usd_per_mtok bigint NOT NULL CHECK (input_micro_usd_per_mtok >= 0),
      output_micro_usd_per_mtok bigint NOT NULL CHECK (output_micro_usd_per_mtok >= 0),
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE ledger_holders (
      id text PRIMARY KEY,
      started_at timestamptz NOT NULL DEFAULT now(),
      heartbeat_at timestamptz NOT NULL,
      closed_at timestamptz
    );

    CREATE TABLE credit_leases (
      id text PRIMARY KEY,
      account_id text NOT NULL REFERENCES accounts(id),
      holder_id text NOT NULL REFERENCES ledger_holders(id),
      amount_micro_usd bigint NOT NULL CHECK (amount_micro_usd >= 0),
      created_at timestamptz NOT NULL DEFAULT now(),
      closed_at timestamptz
    );
    CREATE INDEX credit_leases_open ON credit_leases (account_id) WHERE closed_at IS NULL;
    CREATE INDEX credit_leases_holder_open ON credit_leases (holder_id) WHERE closed_at IS NULL;

    CREATE TABLE ledger_requests (
      request_id text PRIMARY KEY,
      account_id text NOT NULL,
      key_id text NOT NULL,
      lease_id text NOT NULL,
      holder_id text NOT NULL,
      model text NOT NULL,
      reserved_micro_usd bigint NOT NULL CHECK (reserved_micro_usd >= 0),
      state text NOT NULL CHECK (state IN ('reserved', 'settled', 'released')),
      consumer_debit_micro_usd bigint NOT NULL DEFAULT 0,
      provider_credit_micro_usd bigint NOT NULL DEFAULT 0,
      platform_fee_micro_usd bigint NOT NULL DEFAULT 0,
      provider_account_id text,
      provider_id text,
      prompt_tokens integer NOT NULL DEFAULT 0,
      completion_tokens integer NOT NULL DEFAULT 0,
      reasoning_tokens integer NOT NULL DEFAULT 0,
      release_reason text,
      created_at timestamptz NOT NULL DEFAULT now(),
      resolved_at timestamptz
    );
    CREATE INDEX ledger_requests_lease ON ledger_requests (lease_id);
    CREATE INDEX ledger_requests_key ON ledger_requests (key_id);
    CREATE INDEX ledger_requests_account_time ON ledger_requests (account_id, created_at);
    CREATE INDEX ledger_requests_open ON ledger_requests (holder_id) WHERE state = 'reserved';

    CREATE TABLE ledger_entries (
      id bigserial PRIMARY KEY,
      account_id text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('credit', 'debit', 'earning', 'platform_fee')),
      amount_micro_usd bigint NOT NULL,
      request_id text,
      reference text,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    -- Exactly once: one entry of each kind per (account, request) and per credit reference.
    CREATE UNIQUE INDEX ledger_entries_request ON ledger_entries (account_id, kind, request_id) WHERE request_id IS NOT NULL;
    CREATE UNIQUE INDEX ledger_entries_reference ON ledger_entries (kind, reference) WHERE reference IS NOT NULL;
    CREATE INDEX ledger_entries_account ON ledger_entries (account_id, id);

    CREATE TABLE balance_snapshots (
      account_id text PRIMARY KEY,
      balance_micro_usd bigint NOT NULL,
      upto_entry_id bigint NOT NULL,
      updated_at timestamptz NOT NULL
    );
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DROP TABLE balance_snapshots, ledger_entries, ledger_requests, credit_leases, ledger_holders,
      model_prices, provider_tokens, api_keys, accounts;
  `.execute(db);
}
