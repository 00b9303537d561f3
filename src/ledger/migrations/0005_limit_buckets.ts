/**
 * Rate-limit buckets shared by every coordinator process (`RATE_LIMIT_STORE=postgres`): one `limit_buckets` row
 * per bucket key (`a:<account>:<dimension>`, `k:<key>:<dimension>`) and one `limit_leases` row per (bucket,
 * process) holding tokens drawn from it. A process spends its lease in memory and comes back for more about once
 * per second per active key, so the row is hot per *lease*, not per request.
 *
 * Levels are `double precision`, not integers or numeric: refill adds `Δms × rate / 1000`, which is fractional for
 * rates such as 5M tokens/min, and float8 is the representation `src/ratelimit/token-bucket.ts` computes with, so
 * the row follows the in-memory arithmetic bit for bit (its 1e-6 slack covers the rest). Tokens are not money.
 * Times are epoch ms passed by the caller (as `token-bucket.ts` takes `now`), not the database clock, so tests can
 * drive it with a fake clock; a time behind the row's refills nothing, so clock skew cannot mint tokens.
 *
 * `limit_draw` does the whole exchange (refill, take back the caller's debt or lease, grant) in one statement and
 * one round trip, serialised by the bucket row's lock. The refill is capped at `burst − outstanding` (the tokens
 * out on lease), so the bucket plus every lease never holds more than the burst: the cluster admits at most
 * `burst + rate × window` in any window. Uses `Kysely<any>` and never imports `src/`, like every migration.
 */
import { sql, type Kysely } from "kysely";

/* eslint-disable @typescript-eslint/no-explicit-any */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE limit_buckets (
      key text PRIMARY KEY,
      rate_per_sec double precision NOT NULL,
      burst double precision NOT NULL,
      -- Tokens in the bucket at updated_ms; negative is debt (charged after the fact), repaid by refill.
      level double precision NOT NULL,
      -- Sum over limit_leases.held (positive parts): tokens out on lease, still spendable by some process.
      outstanding double precision NOT NULL DEFAULT 0 CHECK (outstanding >= 0),
      updated_ms bigint NOT NULL
    );
    CREATE TABLE limit_leases (
      key text NOT NULL REFERENCES limit_buckets(key) ON DELETE CASCADE,
      holder_id text NOT NULL,
      -- Tokens the holder reported unspent plus its last grant: an upper bound of what it can still spend.
      held double precision NOT NULL CHECK (held >= 0),
      updated_ms bigint NOT NULL,
      PRIMARY KEY (key, holder_id)
    );
    CREATE INDEX limit_leases_updated ON limit_leases (updated_ms);

    CREATE FUNCTION limit_draw(
      p_key text, p_holder text, p_rate double precision, p_burst double precision, p_now bigint,
      p_remaining double precision, p_returned double precision,
      p_min double precision, p_want double precision, p_release boolean
    ) RETURNS TABLE (granted double precision, kept double precision, level double precision, updated_ms bigint)
    LANGUAGE plpgsql AS $fn$
    #variable_conflict use_column
    DECLARE
      b limit_buckets%ROWTYPE;
      old_held double precision;
      others double precision;
      lvl double precision;
      k double precision;
      g double precision := 0;
      t bigint;
    BEGIN
      -- A missing row is a full bucket. Twice, because an idle row may be pruned between the two statements.
      FOR attempt IN 1..2 LOOP
        INSERT INTO limit_buckets AS x (key, rate_per_sec, burst, level, outstanding, updated_ms)
          VALUES (p_key, p_rate, p_burst, p_burst, 0, p_now) ON CONFLICT (key) DO NOTHING;
        SELECT * INTO b FROM limit_buckets x WHERE x.key = p_key FOR UPDATE;
        EXIT WHEN FOUND;
      END LOOP;
      SELECT l.held INTO old_held FROM limit_leases l WHERE l.key = p_key AND l.holder_id = p_holder;
      old_held := coalesce(old_held, 0);
      -- Float residue of sums and differences (~1e-15) is not a token: snap it, as token-bucket.ts's 1e-6 slack does.
      others := b.outstanding - old_held;
      IF others < 1e-6 THEN others := 0; END IF;
      t := greatest(b.updated_ms, p_now);
      lvl := b.level;
      -- Refill under the stored limits, capped at what is not out on lease as it stood since the last update:
      -- holders only spend between updates, so that cap is never above the true one (refill never over-counts).
      IF b.rate_per_sec > 0 AND lvl < b.burst - b.outstanding THEN
        lvl := least(b.burst - b.outstanding, lvl + (t - b.updated_ms) * b.rate_per_sec / 1000.0);
      END IF;
      -- Release: the whole local balance (tokens or debt) goes back. Otherwise only debt moves into the bucket
      -- (so it is repaid by refill, as in memory) and unspent tokens stay with the holder. Never more than the
      -- lease row says it holds: a lease reaped as stale is forfeited, and the holder drops it too (its answer "kept").
      IF p_release THEN k := 0; lvl := lvl + least(p_remaining, old_held);
      ELSE k := least(greatest(0, p_remaining), old_held); lvl := lvl + least(0, p_remaining);
      END IF;
      -- Given-back tokens (reconciled over-estimates), capped like token-bucket.ts adjust: never above the burst.
      IF p_returned > 0 THEN
        lvl := greatest(lvl, least(b.burst - others - k, lvl + p_returned));
      END IF;
      -- New limits (an override or tier change) apply from now, clamping the level like withLimits.
      lvl := least(lvl, p_burst);
      IF NOT p_release AND p_want > 0 AND lvl + 1e-6 >= p_min THEN
        g := greatest(p_min, least(p_want, lvl));
        lvl := lvl - g;
      END IF;
      UPDATE limit_buckets x SET rate_per_sec = p_rate, burst = p_burst, level = lvl,
        outstanding = others + k + g, updated_ms = t
        WHERE x.key = p_key;
      IF k + g > 0 THEN
        INSERT INTO limit_leases AS l (key, holder_id, held, updated_ms) VALUES (p_key, p_holder, k + g, p_now)
          ON CONFLICT (key, holder_id) DO UPDATE SET held = excluded.held, updated_ms = excluded.updated_ms;
      ELSE
        DELETE FROM limit_leases l WHERE l.key = p_key AND l.holder_id = p_holder;
      END IF;
      RETURN QUERY SELECT g, k, lvl, t;
    END
    $fn$;
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    DROP FUNCTION limit_draw(text, text, double precision, double precision, bigint, double precision,
      double precision, double precision, double precision, boolean);
    DROP TABLE limit_leases;
    DROP TABLE limit_buckets;
  `.execute(db);
}
