/**
 * (provider, model) load cooldowns: a provider that refused to load a model (insufficient memory, model load
 * failed) is not sent cold requests for that model for a while, so the scheduler stops routing
 * load → refuse → load loops onto the same machine. Warm routing is unaffected (the model is not there).
 * Pure: every method takes `nowMs`.
 */
import type { ProviderId } from "../registry/types.js";
import { DEFAULT_SWEEP_THRESHOLD, ProviderKeyedMap } from "./provider-keyed-map.js";

export interface LoadCooldownOptions {
  /** How long a load refusal keeps cold requests away, ms. Default 120_000 (S:registry/registry.go:1256). */
  cooldownMs?: number;
  /** Entry count that first triggers an amortized sweep. Default 1024. */
  sweepThreshold?: number;
}

/** Load refusals keyed by provider id, then model. A repeated refusal restarts the cooldown. */
export class LoadCooldowns {
  readonly #cooldownMs: number;
  readonly #untilMs: ProviderKeyedMap<number>;

  constructor(options: LoadCooldownOptions = {}) {
    this.#cooldownMs = options.cooldownMs ?? 120_000;
    this.#untilMs = new ProviderKeyedMap<number>(
      (untilMs, nowMs) => untilMs <= nowMs,
      undefined,
      options.sweepThreshold ?? DEFAULT_SWEEP_THRESHOLD,
    );
  }

  /** Entries held (for memory checks). */
  get size(): number {
    return this.#untilMs.size;
  }

  /** Records a load refusal at `nowMs`; returns when the cooldown ends. */
  recordRefusal(providerId: ProviderId, model: string, nowMs: number): number {
    const untilMs = nowMs + this.#cooldownMs;
    this.#untilMs.set(providerId, model, untilMs, nowMs);
    return untilMs;
  }

  /** True while cold requests for `model` must not be routed to the provider. */
  isCooledDown(providerId: ProviderId, model: string, nowMs: number): boolean {
    const untilMs = this.#untilMs.get(providerId, model);
    return untilMs !== undefined && untilMs > nowMs;
  }

  /** Drops everything known about one provider. */
  forget(providerId: ProviderId): void {
    this.#untilMs.forget(providerId);
  }

  /** Drops lapsed entries now. Writes also sweep, amortized. */
  sweep(nowMs: number): void {
    this.#untilMs.sweep(nowMs);
  }
}
