/**
 * The per-provider health breaker: for machines that fail across every model (a wedged GPU, a broken binary,
 * a dying disk), where per-shape cooldowns would trip one key at a time. Pure: every method takes `nowMs`.
 */
import type { ProviderId } from "../registry/types.js";
import { DEFAULT_SWEEP_THRESHOLD } from "./provider-keyed-map.js";

/** Tunables; defaults mirror the Go coordinator (S:registry/provider_breaker.go). */
export interface ProviderBreakerOptions {
  /** Consecutive faults that open the breaker. Default 5. */
  consecutiveFaults?: number;
  /** Fault fraction that opens the breaker when strictly exceeded over enough samples. Default 0.8. */
  faultRatio?: number;
  /** Samples inside the window needed before the ratio rule applies. Default 20. */
  minSamples?: number;
  /** Sliding window of outcomes for the ratio rule, ms. Default 120_000. */
  sampleWindowMs?: number;
  /** Most outcomes kept per provider (oldest dropped first), bounding memory on busy machines. Default 200. */
  maxSamples?: number;
  /** First cool-down, ms; doubles on each re-open of a streak. Default 60_000. */
  baseCooldownMs?: number;
  /** Cool-down ceiling, ms. Default 300_000. */
  maxCooldownMs?: number;
  /** A provider that stays closed this long forgets its open streak (next open is `baseCooldownMs` again), ms. Default 600_000. */
  streakResetMs?: number;
  /** Provider count that first triggers an amortized sweep. Default 1024. */
  sweepThreshold?: number;
}

/**
 * One provider's breaker.
 * - `closed`: admitted; outcomes sampled. `streak` counts opens not yet forgiven (see `streakResetMs`).
 * - `open`: not admitted until `untilMs`. Outcomes arriving meanwhile (requests already in flight when it
 *   opened) are ignored: they describe the machine before it tripped.
 * - half-open is `open` with `untilMs` passed: admitted again; the first success closes it, the first fault
 *   re-opens it with a doubled cool-down.
 */
type BreakerState =
  | { kind: "closed"; consecutive: number; samples: number[]; streak: number; closedAtMs: number }
  | { kind: "open"; untilMs: number; streak: number };

// Samples are stored as bare numbers to keep a busy fleet cheap: `atMs` for a success, `-atMs` for a fault.
const sampleAt = (x: number): number => Math.abs(x);
const isFault = (x: number): boolean => x < 0;

/** The externally visible state at a moment. */
export type BreakerPhase = "closed" | "open" | "half_open";

/** What one recorded outcome did to the breaker. */
export type BreakerTransition =
  | { kind: "none" }
  | { kind: "opened"; untilMs: number; cause: "consecutive" | "ratio" | "half_open_fault" }
  | { kind: "closed" };

/** Per-provider health breakers. Capacity sheds, client errors and incomplete streams are never recorded. */
export class ProviderBreaker {
  readonly #o: Required<Omit<ProviderBreakerOptions, "sweepThreshold">>;
  readonly #sweepFloor: number;
  readonly #states = new Map<ProviderId, BreakerState>();
  #nextSweepAt: number;

  constructor(options: ProviderBreakerOptions = {}) {
    this.#o = {
      consecutiveFaults: options.consecutiveFaults ?? 5,
      faultRatio: options.faultRatio ?? 0.8,
      minSamples: options.minSamples ?? 20,
      sampleWindowMs: options.sampleWindowMs ?? 120_000,
      maxSamples: Math.max(1, options.maxSamples ?? 200),
      baseCooldownMs: options.baseCooldownMs ?? 60_000,
      maxCooldownMs: options.maxCooldownMs ?? 300_000,
      streakResetMs: options.streakResetMs ?? 600_000,
    };
    this.#sweepFloor = Math.max(1, options.sweepThreshold ?? DEFAULT_SWEEP_THRESHOLD);
    this.#nextSweepAt = this.#sweepFloor;
  }

  /** Providers with state held. */
  get size(): number {
    return this.#states.size;
  }

  /** The provider's phase at `nowMs`. */
  phase(providerId: ProviderId, nowMs: number): BreakerPhase {
    const s = this.#states.get(providerId);
    if (!s || s.kind === "closed") return "closed";
    return s.untilMs > nowMs ? "open" : "half_open";
  }

  /** True while the breaker keeps the provider out (open, cool-down not yet over). Half-open admits. */
  isOpen(providerId: ProviderId, nowMs: number): boolean {
    return this.phase(providerId, nowMs) === "open";
  }

  /** Records a completed request's success. */
  recordSuccess(providerId: ProviderId, nowMs: number): BreakerTransition {
    return this.#record(providerId, false, nowMs);
  }

  /** Records a provider-at-fault outcome (sickness). */
  recordFault(providerId: ProviderId, nowMs: number): BreakerTransition {
    return this.#record(providerId, true, nowMs);
  }

  /** Drops the provider's state (a fresh session starts clean). Returns true if it was open or half-open. */
  forget(providerId: ProviderId): boolean {
    const s = this.#states.get(providerId);
    this.#states.delete(providerId);
    return s?.kind === "open";
  }

  /** Drops state that no longer affects any decision: closed with no recent samples and a forgiven streak. */
  sweep(nowMs: number): void {
    for (const [id, s] of this.#states) if (this.#isDead(s, nowMs)) this.#states.delete(id);
    this.#nextSweepAt = Math.max(this.#sweepFloor, 2 * this.#states.size);
  }

  #record(providerId: ProviderId, fault: boolean, nowMs: number): BreakerTransition {
    let s = this.#states.get(providerId);
    if (s?.kind === "open") {
      if (s.untilMs > nowMs) return { kind: "none" };
      // Half-open: the first outcome decides.
      if (fault) return this.#open(providerId, s.streak, nowMs, "half_open_fault");
      this.#states.set(providerId, {
        kind: "closed",
        consecutive: 0,
        samples: [],
        streak: s.streak,
        closedAtMs: nowMs,
      });
      return { kind: "closed" };
    }
    if (!s) {
      // Successes are stored too (healthy providers cost a bounded sample ring each, swept when idle): the
      // ratio rule must see the successes that came before a provider's first fault.
      if (this.#states.size >= this.#nextSweepAt) this.sweep(nowMs);
      s = { kind: "closed", consecutive: 0, samples: [], streak: 0, closedAtMs: nowMs };
      this.#states.set(providerId, s);
    }
    if (s.streak > 0 && nowMs - s.closedAtMs >= this.#o.streakResetMs) s.streak = 0;

    s.consecutive = fault ? s.consecutive + 1 : 0;
    const windowStart = nowMs - this.#o.sampleWindowMs;
    let drop = 0;
    while (drop < s.samples.length && sampleAt(s.samples[drop]!) <= windowStart) drop++;
    if (s.samples.length - drop >= this.#o.maxSamples) drop = s.samples.length - this.#o.maxSamples + 1;
    if (drop > 0) s.samples.splice(0, drop);
    s.samples.push(fault ? -nowMs : nowMs);

    if (s.consecutive >= this.#o.consecutiveFaults) return this.#open(providerId, s.streak, nowMs, "consecutive");
    if (fault && s.samples.length >= this.#o.minSamples) {
      let faults = 0;
      for (const x of s.samples) if (isFault(x)) faults++;
      if (faults > this.#o.faultRatio * s.samples.length) return this.#open(providerId, s.streak, nowMs, "ratio");
    }
    return { kind: "none" };
  }

  /** Opens with cool-down `base × 2^streak`, capped; `streak` counts earlier opens not yet forgiven. */
  #open(
    providerId: ProviderId,
    streak: number,
    nowMs: number,
    cause: "consecutive" | "ratio" | "half_open_fault",
  ): BreakerTransition {
    const cooldownMs = Math.min(this.#o.maxCooldownMs, this.#o.baseCooldownMs * 2 ** Math.min(streak, 30));
    const untilMs = nowMs + cooldownMs;
    this.#states.set(providerId, { kind: "open", untilMs, streak: streak + 1 });
    return { kind: "opened", untilMs, cause };
  }

  #isDead(s: BreakerState, nowMs: number): boolean {
    if (s.kind === "open") {
      // An elapsed open (half-open) entry only remembers its streak; once forgiven, it is a clean provider.
      return s.untilMs + this.#o.streakResetMs <= nowMs;
    }
    const last = s.samples.length === 0 ? -Infinity : sampleAt(s.samples[s.samples.length - 1]!);
    const streakForgiven = s.streak === 0 || nowMs - s.closedAtMs >= this.#o.streakResetMs;
    return streakForgiven && last <= nowMs - this.#o.sampleWindowMs;
  }
}
