/**
 * Overrides written through this process's admin API, which win over what principals carry for one API-key
 * cache TTL.
 *
 * Why: a principal carries the overrides read when its key was looked up, and is cached for up to the key
 * cache's TTL. The coordinator that served `SetLimits` knows the new value at once, so it applies it at once;
 * after one TTL every principal it holds was looked up after the change and carries it (or a newer one), so the
 * recorded value is dropped and principals are authoritative again. Other coordinators apply the change when
 * their cached principals expire: within the TTL.
 */
import type { RateLimitOverride } from "../accounts/types.js";

export class RecentOverrides {
  readonly #entries = new Map<string, { override: RateLimitOverride | undefined; untilMs: number }>();
  readonly #holdMs: number;

  /** @param holdMs how long a recorded override wins: the API-key cache TTL. */
  constructor(holdMs: number) {
    this.#holdMs = holdMs;
  }

  /** Records `override` (undefined = cleared) for a subject key (`a:<accountId>` or `k:<keyId>`). */
  record(subject: string, override: RateLimitOverride | undefined, nowMs: number): void {
    this.#entries.set(subject, { override, untilMs: nowMs + this.#holdMs });
  }

  /** The recorded override while it holds, else `fromPrincipal`. */
  resolve(subject: string, fromPrincipal: RateLimitOverride | undefined, nowMs: number): RateLimitOverride | undefined {
    if (this.#entries.size === 0) return fromPrincipal;
    const e = this.#entries.get(subject);
    if (!e) return fromPrincipal;
    if (nowMs < e.untilMs) return e.override;
    this.#entries.delete(subject);
    return fromPrincipal;
  }

  /** Drops expired records (the limiter's periodic sweep). */
  prune(nowMs: number): void {
    for (const [k, e] of this.#entries) if (nowMs >= e.untilMs) this.#entries.delete(k);
  }
}
