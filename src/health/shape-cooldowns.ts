/**
 * Per (provider, model, request shape) inference-error cooldowns: the breaker that stops a broken build from
 * soaking up retries for the one kind of request it cannot serve, while the same build keeps serving the
 * shapes it can. Pure: every method takes `nowMs`; no timers.
 */
import type { RequestShape } from "../inference/types.js";
import type { ProviderId } from "../registry/types.js";
import { DEFAULT_SWEEP_THRESHOLD, ProviderKeyedMap } from "./provider-keyed-map.js";

/** Tunables; every default mirrors the Go coordinator (S:registry/error_cooldown.go). */
/** Sickness strikes within the window that cool a (provider, model, shape) by default. */
const DEFAULT_STRIKES_TO_COOL = 2;

export interface ShapeCooldownOptions {
  /** Sickness strikes within {@link strikeWindowMs} that start a cooldown. Default 2. */
  strikesToCool?: number;
  /** Sliding window for counting strikes, ms. Default 60_000. */
  strikeWindowMs?: number;
  /** Routing cooldown once tripped, ms; each further strike while cooled restarts it. Default 300_000. */
  cooldownMs?: number;
  /** Entry count that first triggers an amortized sweep. Default 1024. */
  sweepThreshold?: number;
  /** Called once when a cooldown lapses (observed on read or dropped by a sweep), e.g. to count it. */
  onExpired?: (providerId: ProviderId, model: string, shape: RequestShape) => void;
}

/** What one recorded sickness did, as data for the caller's metrics and logs. */
export type StrikeResult =
  | { kind: "struck"; strikesInWindow: number } // counted, below the threshold
  | { kind: "entered"; untilMs: number } // this strike started a cooldown
  | { kind: "extended"; untilMs: number }; // already cooled: the cooldown restarts from now

/** What one recorded success did. */
export type SuccessResult = { kind: "cleared" } | { kind: "reset" } | { kind: "none" };

interface Entry {
  /** Strike times inside the window, oldest first; at most `strikesToCool` kept. */
  strikes: number[];
  /** Cooldown end, ms since epoch; 0 = not cooled. */
  cooledUntilMs: number;
}

/**
 * Cooldowns keyed by provider id, then `model + shape`.
 *
 * - Only sickness counts (the caller classifies: 500, 502/disconnect, 504/accepted-then-silent, preamble
 *   timeout, post-commit stall). Capacity (503) and client errors are never recorded here.
 * - `strikesToCool` strikes inside `strikeWindowMs` → cooled for `cooldownMs`. Any strike while cooled
 *   restarts the cooldown (the in-flight requests that were already on their way keep proving it sick).
 * - A success clears only its own (provider, model, shape): a clean base completion says nothing about the
 *   tool path that crashed. An incomplete stream is not a success and is never recorded.
 * - When a cooldown lapses the entry starts clean (its strikes are older than the window by then).
 */
export class ShapeCooldowns {
  /** Strikes within the window that cool a (provider, model, shape) (the resolved option). */
  readonly strikesToCool: number;
  readonly #strikeWindowMs: number;
  readonly #cooldownMs: number;
  readonly #onExpired: ShapeCooldownOptions["onExpired"];
  readonly #entries: ProviderKeyedMap<Entry>;

  constructor(options: ShapeCooldownOptions = {}) {
    this.strikesToCool = Math.max(1, options.strikesToCool ?? DEFAULT_STRIKES_TO_COOL);
    this.#strikeWindowMs = options.strikeWindowMs ?? 60_000;
    this.#cooldownMs = options.cooldownMs ?? 300_000;
    this.#onExpired = options.onExpired;
    this.#entries = new ProviderKeyedMap<Entry>(
      (e, nowMs) => this.#isDead(e, nowMs),
      (providerId, subKey, e) => {
        if (e.cooledUntilMs !== 0) this.#reportExpired(providerId, subKey);
      },
      options.sweepThreshold ?? DEFAULT_SWEEP_THRESHOLD,
    );
  }

  /** Entries held (for memory checks and debugging). */
  get size(): number {
    return this.#entries.size;
  }

  /** Records one sickness strike at `nowMs`. */
  recordSickness(providerId: ProviderId, model: string, shape: RequestShape, nowMs: number): StrikeResult {
    const subKey = subKeyOf(model, shape);
    let entry = this.#entries.get(providerId, subKey);
    if (entry) this.#expireIfDue(providerId, subKey, entry, nowMs);
    if (!entry) {
      entry = { strikes: [], cooledUntilMs: 0 };
      this.#entries.set(providerId, subKey, entry, nowMs);
    }
    const windowStart = nowMs - this.#strikeWindowMs;
    entry.strikes = entry.strikes.filter((t) => t > windowStart);
    entry.strikes.push(nowMs);
    if (entry.strikes.length > this.strikesToCool) entry.strikes.shift();

    if (entry.cooledUntilMs > nowMs) {
      entry.cooledUntilMs = nowMs + this.#cooldownMs;
      return { kind: "extended", untilMs: entry.cooledUntilMs };
    }
    if (entry.strikes.length >= this.strikesToCool) {
      entry.cooledUntilMs = nowMs + this.#cooldownMs;
      return { kind: "entered", untilMs: entry.cooledUntilMs };
    }
    return { kind: "struck", strikesInWindow: entry.strikes.length };
  }

  /** Records a complete, successful stream: clears this shape's strikes and cooldown (only this shape). */
  recordSuccess(providerId: ProviderId, model: string, shape: RequestShape, nowMs: number): SuccessResult {
    const subKey = subKeyOf(model, shape);
    const entry = this.#entries.get(providerId, subKey);
    if (!entry) return { kind: "none" };
    this.#expireIfDue(providerId, subKey, entry, nowMs);
    const wasCooled = entry.cooledUntilMs > nowMs;
    this.#entries.delete(providerId, subKey);
    return wasCooled ? { kind: "cleared" } : { kind: "reset" };
  }

  /** True while (provider, model, shape) must not be routed to. Never fail-open. */
  isCooledDown(providerId: ProviderId, model: string, shape: RequestShape, nowMs: number): boolean {
    const subKey = subKeyOf(model, shape);
    const entry = this.#entries.get(providerId, subKey);
    if (!entry) return false;
    this.#expireIfDue(providerId, subKey, entry, nowMs);
    return entry.cooledUntilMs > nowMs;
  }

  /** When the cooldown of (provider, model, shape) ends, or undefined if it is not cooled. */
  cooledUntilMs(providerId: ProviderId, model: string, shape: RequestShape, nowMs: number): number | undefined {
    return this.isCooledDown(providerId, model, shape, nowMs)
      ? this.#entries.get(providerId, subKeyOf(model, shape))!.cooledUntilMs
      : undefined;
  }

  /**
   * Drops everything known about one provider. Returns the shapes whose cooldowns had not yet been reported
   * as expired, so the caller can count each one cleared exactly once.
   */
  forget(providerId: ProviderId): RequestShape[] {
    const cleared: RequestShape[] = [];
    for (const [subKey, entry] of this.#entries.forget(providerId)) {
      if (entry.cooledUntilMs !== 0) cleared.push(shapeOfSubKey(subKey));
    }
    return cleared;
  }

  /** Drops every entry that can no longer affect a decision. Writes also sweep, amortized. */
  sweep(nowMs: number): void {
    this.#entries.sweep(nowMs);
  }

  #isDead(e: Entry, nowMs: number): boolean {
    const lastStrike = e.strikes.length === 0 ? -Infinity : e.strikes[e.strikes.length - 1]!;
    return e.cooledUntilMs <= nowMs && lastStrike <= nowMs - this.#strikeWindowMs;
  }

  /** A lapsed cooldown is reported once and the entry starts clean. */
  #expireIfDue(providerId: ProviderId, subKey: string, e: Entry, nowMs: number): void {
    if (e.cooledUntilMs === 0 || e.cooledUntilMs > nowMs) return;
    e.cooledUntilMs = 0;
    e.strikes = [];
    this.#reportExpired(providerId, subKey);
  }

  #reportExpired(providerId: ProviderId, subKey: string): void {
    const sep = subKey.lastIndexOf(SEP);
    this.#onExpired?.(providerId, subKey.slice(0, sep), shapeOfSubKey(subKey));
  }
}

/** A separator no model id contains. */
const SEP = "\u0000";

function subKeyOf(model: string, shape: RequestShape): string {
  return `${model}${SEP}${shape}`;
}

function shapeOfSubKey(subKey: string): RequestShape {
  return subKey.slice(subKey.lastIndexOf(SEP) + 1) as RequestShape;
}
