/**
 * Remembers, per provider, which of its last settled requests over-claimed usage (see defend-usage.ts) and
 * turns that into a routing penalty and a fence decision. Pure state, no clock: the window counts requests,
 * not time, so a provider that serves little is judged on the same evidence as a busy one.
 *
 * One over-claim is not proof of lying (an unusual chat template can exceed a tolerance), so the penalty grows
 * with the over-claim fraction and only a repeated pattern fences. The tracker returns decisions as data; the
 * caller applies the penalty in routing and carries out the fence (stop routing, alert). A fenced provider
 * that keeps settling is re-judged as over-claims slide out of its window, so any stickier policy belongs to
 * the caller (or {@link DivergenceTracker.forget} on reconnection).
 */
import type { ProviderId } from "../registry/types.js";

/** Options of {@link DivergenceTracker}; every field has a documented default. */
export interface DivergenceTrackerOptions {
  /** Settled requests remembered per provider (default 20, at most 31: the window is a bit mask). */
  windowSize?: number;
  /** Over-claims in the window at which `fence` turns true (default 5). */
  fenceOverClaims?: number;
  /** Penalty added per unit of over-claim fraction: penalty = 1 + weight × fraction (default 4, so 1..5). */
  penaltyWeight?: number;
  /** Providers tracked at most; the least recently settled is dropped past it (default 100,000). */
  maxProviders?: number;
}

/** The tracker's judgement of one provider after a settlement. */
export interface DivergenceVerdict {
  /** Multiplier on the provider's routing cost: 1 is none, up to 1 + penaltyWeight. */
  routingPenalty: number;
  /** True while the window holds at least `fenceOverClaims` over-claims. */
  fence: boolean;
}

/** One provider in {@link DivergenceTracker.snapshot}. */
export interface DivergenceRow extends DivergenceVerdict {
  providerId: ProviderId;
  /** Settled requests in the window (up to windowSize). */
  settled: number;
  /** Over-claims among them. */
  overClaims: number;
}

/** For the admin/ops view: every provider with an over-claim in its window, worst first. */
export interface DivergenceSnapshot {
  /** Providers with any settlement remembered. */
  tracked: number;
  providers: DivergenceRow[];
}

interface Window {
  /** Bit i set = the (i+1)-th most recent settlement over-claimed. */
  bits: number;
  settled: number;
}

/** Per-provider over-claim windows. Memory is bounded: ~150 bytes plus the id per provider, at most `maxProviders`. */
export class DivergenceTracker {
  readonly #windowSize: number;
  readonly #mask: number;
  readonly #fenceOverClaims: number;
  readonly #penaltyWeight: number;
  readonly #maxProviders: number;
  /** Insertion order is recency: a settlement moves its provider to the end, eviction takes the first. */
  readonly #windows = new Map<ProviderId, Window>();

  constructor(options: DivergenceTrackerOptions = {}) {
    this.#windowSize = options.windowSize ?? 20;
    if (!Number.isInteger(this.#windowSize) || this.#windowSize < 1 || this.#windowSize > 31) {
      throw new RangeError(`windowSize must be an integer in 1..31, got ${this.#windowSize}`);
    }
    this.#mask = 2 ** this.#windowSize - 1;
    this.#fenceOverClaims = options.fenceOverClaims ?? 5;
    this.#penaltyWeight = options.penaltyWeight ?? 4;
    this.#maxProviders = Math.max(1, options.maxProviders ?? 100_000);
  }

  /** Records one settled request of `providerId` and returns its updated verdict. */
  record(providerId: ProviderId, overClaimed: boolean): DivergenceVerdict {
    const prev = this.#windows.get(providerId);
    const w: Window = {
      bits: (((prev?.bits ?? 0) << 1) | (overClaimed ? 1 : 0)) & this.#mask,
      settled: Math.min(this.#windowSize, (prev?.settled ?? 0) + 1),
    };
    this.#windows.delete(providerId);
    this.#windows.set(providerId, w);
    if (this.#windows.size > this.#maxProviders) this.#windows.delete(this.#windows.keys().next().value!);
    return this.#verdict(w);
  }

  /** The routing penalty of `providerId` (1 when it has no over-claim on record). */
  penalty(providerId: ProviderId): number {
    const w = this.#windows.get(providerId);
    return w === undefined ? 1 : this.#verdict(w).routingPenalty;
  }

  /** Over-claims in the window of `providerId` (0 when none is on record). */
  overClaims(providerId: ProviderId): number {
    const w = this.#windows.get(providerId);
    return w === undefined ? 0 : popcount(w.bits);
  }

  /** Drops everything remembered about `providerId`. */
  forget(providerId: ProviderId): void {
    this.#windows.delete(providerId);
  }

  /** Providers with at least one over-claim in their window, most over-claims first. */
  snapshot(): DivergenceSnapshot {
    const providers: DivergenceRow[] = [];
    for (const [providerId, w] of this.#windows) {
      if (w.bits === 0) continue;
      providers.push({ providerId, settled: w.settled, overClaims: popcount(w.bits), ...this.#verdict(w) });
    }
    providers.sort((a, b) => b.overClaims - a.overClaims || (a.providerId < b.providerId ? -1 : 1));
    return { tracked: this.#windows.size, providers };
  }

  #verdict(w: Window): DivergenceVerdict {
    const overClaims = popcount(w.bits);
    // The fraction is over the full window, not just the settlements seen so far: a new provider's first
    // request over-claiming costs it 1 + 4/20, not the maximum penalty, while missing history counts as clean.
    return {
      routingPenalty: 1 + (this.#penaltyWeight * overClaims) / this.#windowSize,
      fence: overClaims >= this.#fenceOverClaims,
    };
  }
}

function popcount(n: number): number {
  let c = 0;
  for (let v = n; v !== 0; v &= v - 1) c++;
  return c;
}
