/**
 * The shared rate-limit buckets on PostgreSQL: the {@link LimitLeaseSource} a `LeasedBucketStore` draws from
 * (`RATE_LIMIT_STORE=postgres`). One exchange is one statement calling `limit_draw` (migration 0005), serialised
 * per bucket by its row lock; a process makes about one per active key per second, whatever its request rate.
 */
import { sql, type Kysely } from "kysely";
import type { DrawRequest, DrawResult, LimitLeaseSource } from "../ratelimit/lease-source.js";
import type { Database } from "./schema.js";

/** Bucket rows idle this long with nothing on lease and full again are deleted by the reaper (they read as full). */
const IDLE_BUCKET_PRUNE_MS = 60 * 60_000;

/** The PostgreSQL lease source over `db`. */
export function createPgLimitLeaseSource(db: Kysely<Database>): LimitLeaseSource {
  return {
    async draw(r: DrawRequest): Promise<DrawResult> {
      const { rows } = await sql<{ granted: number; kept: number; level: number; updated_ms: bigint }>`
        SELECT granted, kept, level, updated_ms FROM limit_draw(
          ${r.key}, ${r.holderId}, ${r.limits.ratePerSec}::float8, ${r.limits.burst}::float8, ${Math.floor(r.nowMs)}::int8,
          ${r.remaining}::float8, ${r.returned}::float8, ${r.minUnits}::float8, ${r.wantUnits}::float8, ${r.release})`.execute(
        db,
      );
      const row = rows[0]!;
      return { granted: row.granted, kept: row.kept, level: row.level, updatedMs: Number(row.updated_ms) };
    },

    async reapStale(nowMs: number, staleMs: number): Promise<number> {
      const cut = Math.floor(nowMs - staleMs);
      const { rows } = await sql<{ n: bigint }>`
        WITH dead AS (DELETE FROM limit_leases WHERE updated_ms < ${cut}::int8 RETURNING key, held),
        per_key AS (SELECT key, sum(held) AS held FROM dead GROUP BY key),
        freed AS (
          UPDATE limit_buckets b SET outstanding = greatest(0, b.outstanding - per_key.held)
          FROM per_key WHERE b.key = per_key.key RETURNING 1
        )
        SELECT (SELECT count(*) FROM dead)::int8 AS n, (SELECT count(*) FROM freed) AS _`.execute(db);
      await sql`
        DELETE FROM limit_buckets b
        WHERE b.updated_ms < ${Math.floor(nowMs - IDLE_BUCKET_PRUNE_MS)}::int8 AND b.outstanding = 0
          AND (b.rate_per_sec <= 0 OR b.level + (${Math.floor(nowMs)}::int8 - b.updated_ms) * b.rate_per_sec / 1000.0 >= b.burst)
          AND NOT EXISTS (SELECT 1 FROM limit_leases l WHERE l.key = b.key)`.execute(db);
      return Number(rows[0]!.n);
    },
  };
}
