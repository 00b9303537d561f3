/**
 * A two-level map keyed by provider id, then by a per-provider sub-key, with amortized sweeping of dead
 * entries. Shared by the shape and load cooldowns so that `forgetProvider` is O(entries of that provider)
 * and memory stays bounded without timers.
 */
import type { ProviderId } from "../registry/types.js";

/** Smallest entry count at which a write triggers a sweep (the Go coordinator's 1024). */
export const DEFAULT_SWEEP_THRESHOLD = 1024;

/**
 * Entries live under `provider → subKey`. A write sweeps (drops every entry `isDead` reports dead) once the
 * total count exceeds the next threshold, which is then set to twice the surviving count (never below the
 * floor): a sweep costs O(n) but happens only after n new writes, so writes stay amortized O(1) even when
 * every entry is alive (the review item about O(n) clean-ups on the hot path).
 */
export class ProviderKeyedMap<E> {
  readonly #byProvider = new Map<ProviderId, Map<string, E>>();
  readonly #isDead: (entry: E, nowMs: number) => boolean;
  readonly #onDrop: ((providerId: ProviderId, subKey: string, entry: E) => void) | undefined;
  readonly #sweepFloor: number;
  #size = 0;
  #nextSweepAt: number;

  /**
   * @param isDead an entry that can no longer affect any decision at `nowMs`
   * @param onDrop sees each entry a sweep drops (e.g. to report an expired cooldown)
   * @param sweepThreshold floor of the entry count that triggers a sweep on write
   */
  constructor(
    isDead: (entry: E, nowMs: number) => boolean,
    onDrop?: (providerId: ProviderId, subKey: string, entry: E) => void,
    sweepThreshold = DEFAULT_SWEEP_THRESHOLD,
  ) {
    this.#isDead = isDead;
    this.#onDrop = onDrop;
    this.#sweepFloor = Math.max(1, sweepThreshold);
    this.#nextSweepAt = this.#sweepFloor;
  }

  /** Total entries across providers. */
  get size(): number {
    return this.#size;
  }

  /** Number of providers holding at least one entry. */
  get providerCount(): number {
    return this.#byProvider.size;
  }

  get(providerId: ProviderId, subKey: string): E | undefined {
    return this.#byProvider.get(providerId)?.get(subKey);
  }

  /** Inserts or replaces an entry; may sweep dead entries first (see the class comment). */
  set(providerId: ProviderId, subKey: string, entry: E, nowMs: number): void {
    if (this.#size >= this.#nextSweepAt) this.sweep(nowMs);
    let inner = this.#byProvider.get(providerId);
    if (!inner) this.#byProvider.set(providerId, (inner = new Map()));
    if (!inner.has(subKey)) this.#size++;
    inner.set(subKey, entry);
  }

  delete(providerId: ProviderId, subKey: string): boolean {
    const inner = this.#byProvider.get(providerId);
    if (!inner?.delete(subKey)) return false;
    this.#size--;
    if (inner.size === 0) this.#byProvider.delete(providerId);
    return true;
  }

  /** Drops every entry of one provider; returns them (so callers can report what was cleared). */
  forget(providerId: ProviderId): Array<[string, E]> {
    const inner = this.#byProvider.get(providerId);
    if (!inner) return [];
    this.#byProvider.delete(providerId);
    this.#size -= inner.size;
    return [...inner];
  }

  /** Drops every dead entry now (the constructor's `onDrop` sees each one). */
  sweep(nowMs: number): void {
    for (const [providerId, inner] of this.#byProvider) {
      for (const [subKey, entry] of inner) {
        if (!this.#isDead(entry, nowMs)) continue;
        inner.delete(subKey);
        this.#size--;
        this.#onDrop?.(providerId, subKey, entry);
      }
      if (inner.size === 0) this.#byProvider.delete(providerId);
    }
    this.#nextSweepAt = Math.max(this.#sweepFloor, 2 * this.#size);
  }
}
