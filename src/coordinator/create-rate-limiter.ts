/**
 * The rate limiter of one coordinator process, with its bucket store chosen by `RATE_LIMIT_STORE`: in memory
 * (each of N replicas enforces 1/N) or shared through PostgreSQL leases (every replica enforces the whole limit
 * against one bucket per key). The shared store runs a sweep that must be stopped, and its grants handed back,
 * at shutdown: `close()`.
 */
import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import type { Config } from "../config/config.js";
import { createPgLimitLeaseSource } from "../ledger/limit-bucket-sql.js";
import type { Database } from "../ledger/schema.js";
import { LeasedBucketStore } from "../ratelimit/leased-bucket-store.js";
import { createRateLimiter, type KeyedRateLimiter, type RateLimiterOptions } from "../ratelimit/limiter.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";

export interface ProcessRateLimiter {
  limiter: KeyedRateLimiter;
  /** Stops the shared store's sweep and returns its grants (a no-op with the memory store). */
  close(): Promise<void>;
}

/** Builds the limiter for `config` (`RATE_LIMIT_STORE`, `COORDINATOR_REPLICAS`, the key-cache TTL). */
export function createProcessRateLimiter(
  config: Pick<Config, "rateLimitStore" | "replicas" | "apiKeyCacheTtlMs">,
  deps: { db: Kysely<Database>; clock: Clock; log: Logger; tiers?: RateLimiterOptions["tiers"] | undefined },
): ProcessRateLimiter {
  const share = 1 / config.replicas;
  const common = {
    // An operator's SetLimits served here wins until every cached principal carries it (one key-cache TTL).
    recentOverrideMs: config.apiKeyCacheTtlMs,
    ...(deps.tiers ? { tiers: deps.tiers } : {}),
  };
  if (config.rateLimitStore !== "postgres") {
    return { limiter: createRateLimiter({ ...common, processShare: share }), close: async () => {} };
  }
  const store = new LeasedBucketStore({
    source: createPgLimitLeaseSource(deps.db),
    holderId: `r_${randomUUID()}`,
    clock: deps.clock,
    failOpenShare: share,
    warn: (message, fields) => deps.log.warn(message, fields),
  });
  store.start();
  // The buckets are whole: each process enforces the account's limit against the shared bucket. In-flight
  // counts are not shared, so concurrency limits keep the 1/N share.
  const limiter = createRateLimiter({ ...common, processShare: 1, concurrencyShare: share, store });
  return { limiter, close: () => store.close() };
}
