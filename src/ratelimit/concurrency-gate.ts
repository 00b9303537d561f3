/**
 * Requests in flight per account and per key, against the concurrency limits an operator sets (`SetLimits`
 * `max_concurrent_requests`; the tiers set none). A request holds its slots from admission until the limiter
 * reconciles its ticket, which the inference route does on every path (success, failure, client abort).
 *
 * With N coordinator processes each enforces floor(limit / N), at least 1 (so a limit below N over-admits up to N
 * at once across the fleet); like the rate buckets, balanced load is exact and an unbalanced one under-admits.
 */
import { writeConcurrencyHeaders } from "./rate-limit-headers.js";

/** One counter and the limit that applies to it (0 = unlimited, counted but never refused). */
export interface ConcurrencySlot {
  /** Counter key, e.g. `a:<accountId>` or `k:<keyId>`. */
  readonly key: string;
  /** The account-wide (or key-wide) limit, before the process share. */
  readonly limit: number;
  readonly scope: "account" | "key";
}

/** In-flight counters of one process. */
export class ConcurrencyGate {
  readonly #inflight = new Map<string, number>();
  readonly #share: number;

  /** @param processShare this process's fraction of every limit, in (0, 1]. */
  constructor(processShare: number) {
    this.#share = processShare;
  }

  /** What this process enforces of `limit`: floor(limit × share), at least 1; 0 stays unlimited. */
  processLimit(limit: number): number {
    return limit > 0 ? Math.max(1, Math.floor(limit * this.#share + 1e-9)) : 0;
  }

  /** The slot that is full (the first), or undefined when one more request fits every limited slot. */
  full(slots: readonly ConcurrencySlot[]): ConcurrencySlot | undefined {
    return slots.find((s) => s.limit > 0 && this.inflight(s.key) >= this.processLimit(s.limit));
  }

  /** Takes one slot of each counter. */
  enter(slots: readonly ConcurrencySlot[]): void {
    for (const s of slots) this.#inflight.set(s.key, this.inflight(s.key) + 1);
  }

  /** Gives back one slot of each counter (a counter at 0 is dropped, so idle callers hold no memory). */
  leave(keys: readonly string[]): void {
    for (const key of keys) {
      const n = this.inflight(key) - 1;
      if (n > 0) this.#inflight.set(key, n);
      else this.#inflight.delete(key);
    }
  }

  inflight(key: string): number {
    return this.#inflight.get(key) ?? 0;
  }

  /** Writes the concurrency headers of the binding limited slot (the one with the fewest slots left), if any. */
  writeHeaders(headers: Record<string, string>, slots: readonly ConcurrencySlot[]): void {
    let binding: { limit: number; left: number } | undefined;
    for (const s of slots) {
      if (s.limit <= 0) continue;
      const left = Math.max(0, this.processLimit(s.limit) - this.inflight(s.key));
      if (!binding || left < binding.left) binding = { limit: s.limit, left };
    }
    if (binding)
      writeConcurrencyHeaders(
        headers,
        binding.limit,
        Math.min(binding.limit, Math.floor(binding.left / this.#share + 1e-6)),
      );
  }
}
