/**
 * The port between a {@link LeasedBucketStore} and the shared buckets it draws from (PostgreSQL in production,
 * `src/ledger/limit-bucket-sql.ts`; a fake in unit tests). One call is one atomic exchange on one bucket.
 */
import type { BucketLimits } from "./token-bucket.js";

/** One exchange with a shared bucket: report what this process holds, give back, and ask for more. */
export interface DrawRequest {
  readonly key: string;
  /** This process's identity; its lease row is (key, holderId). */
  readonly holderId: string;
  /** The limits in force now; the shared row takes them from this call on. */
  readonly limits: BucketLimits;
  readonly nowMs: number;
  /** Local balance: unspent lease tokens, or debt when negative (charged after the fact). */
  readonly remaining: number;
  /** Tokens given back by reconciliation since the last exchange (≥ 0). */
  readonly returned: number;
  /** Grant nothing unless at least this many units are available (the request at hand). */
  readonly minUnits: number;
  /** Units wanted (0 asks for nothing: a report or a release). */
  readonly wantUnits: number;
  /** True: hand the whole local balance back and drop the lease (idle key, shutdown). */
  readonly release: boolean;
}

/** What the shared bucket answered. */
export interface DrawResult {
  /** Units granted (0, or between `minUnits` and `wantUnits`). */
  readonly granted: number;
  /** Of the reported positive `remaining`, what the lease still counts (less if it was reaped as stale). */
  readonly kept: number;
  /** The shared bucket's level after the exchange, at `updatedMs` (for retry hints and headers). */
  readonly level: number;
  readonly updatedMs: number;
}

/** The shared buckets. */
export interface LimitLeaseSource {
  draw(request: DrawRequest): Promise<DrawResult>;
  /**
   * Forfeits leases not renewed for `staleMs` (their holder died or lost the database): their tokens stop
   * counting as out on lease, so the bucket can refill past them. Returns how many were dropped.
   */
  reapStale(nowMs: number, staleMs: number): Promise<number>;
}
