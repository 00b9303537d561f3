/**
 * One usage query per account at a time. `GET /v1/me/usage` sums every settled request of the account since a
 * time (a scan that grows with the account's history: an aggregator's service account has millions of rows), and
 * without a bound one key could keep the database busy for everyone with a loop of concurrent calls. Identical
 * calls (same account and `since_ms`) share the query in flight; a different one while it runs is refused with a
 * 429 and `Retry-After`, before it reaches the database.
 */
import { CoordinatorError } from "../errors/coordinator-error.js";

/** Usage queries one account may have in flight at once (identical calls share one). */
export const USAGE_QUERIES_PER_ACCOUNT = 1;
/** What a refused call is told to wait, s. */
export const USAGE_QUERY_RETRY_AFTER_S = 1;

export class UsageQueryGate<T> {
  readonly #inFlight = new Map<string, { sinceMs: number; result: Promise<T> }>();

  /** `query()`'s result, shared with an identical call in flight; throws `rate_limited` for another one. */
  run(accountId: string, sinceMs: number, query: () => Promise<T>): Promise<T> {
    const running = this.#inFlight.get(accountId);
    if (running) {
      if (running.sinceMs === sinceMs) return running.result;
      throw new CoordinatorError(
        "rate_limited",
        `a usage query for this account is already running (at most ${USAGE_QUERIES_PER_ACCOUNT} at once); retry in ${USAGE_QUERY_RETRY_AFTER_S} s`,
        { wireCode: "usage_query_in_flight", retryAfterS: USAGE_QUERY_RETRY_AFTER_S },
      );
    }
    const result = query().finally(() => this.#inFlight.delete(accountId));
    this.#inFlight.set(accountId, { sinceMs, result });
    return result;
  }

  /** Queries in flight (for tests). */
  get size(): number {
    return this.#inFlight.size;
  }
}
