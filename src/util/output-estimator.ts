/**
 * A keyed estimate of how many completion tokens a request will produce, used to charge rate limits (and
 * possibly reservations) with the *expected* output instead of the worst-case `max_tokens`.
 *
 * Design decisions (see load-test report, Issue 2):
 * - **Absolute tokens, not a fraction of max_tokens.** A completion's length is driven by the model and the
 *   task, not by the budget the client asked for: a reasoning client that sends `max_tokens: 32768` and writes
 *   800 tokens would write the same 800 with a 4096 budget. A fraction-of-budget EWMA breaks as soon as one key
 *   mixes budgets: truncated 256-token requests (fraction 1.0) would make the next 32k request charge 32k.
 *   With absolute tokens a mix of budgets averages sensibly and the result is still clamped to each request's
 *   own `max_tokens`, so a small-budget request is never over-charged.
 * - **EWMA** (weight `alpha` on the newest sample) follows drift in the workload within ~1/alpha requests
 *   while damping one-off outliers; times `safetyFactor` so most requests land under their charge.
 * - **Cold start prior**: until `minSamples` completions were seen, the charge is at least
 *   ⌈max_tokens × 0.25⌉ clamped to [512, 8192] (and ≤ max_tokens). This is the rule the Go coordinator ran in
 *   production for its service tier (`output_admission.go`), so it is a known-safe starting point: it is
 *   conservative for short answers yet 16 × 32k-budget requests cost only 131k, well inside a 512k burst.
 * - **Floor** (`floorTokens`): a run of tiny completions must not drive the charge to ~0, because the charge
 *   bounds how many requests one burst can admit concurrently before reconciliation catches up.
 * Under-estimates are safe for rate limiting because the limiter reconciles actual usage and carries the
 * over-run as debt.
 *
 * Pure: no I/O and no clock. Memory is bounded by an LRU cap on the number of keys (`maxKeys`).
 */

/** Options for {@link OutputEstimator}; every field has a documented default. */
export interface OutputEstimatorOptions {
  /** EWMA weight of the newest observation, in (0, 1]. Default 0.2 (~5-request memory). */
  alpha?: number;
  /** Multiplier applied to the EWMA mean before clamping, ≥ 1. Default 1.5. */
  safetyFactor?: number;
  /** Observations needed before the EWMA replaces the cold-start prior. Default 3. */
  minSamples?: number;
  /** Lower bound of an estimate in tokens (never above the request's max_tokens). Default 256. */
  floorTokens?: number;
  /** Cold-start prior as a fraction of max_tokens. Default 0.25. */
  priorFraction?: number;
  /** Cold-start prior lower bound in tokens. Default 512. */
  priorMinTokens?: number;
  /** Cold-start prior upper bound in tokens. Default 8192. */
  priorMaxTokens?: number;
  /** Most keys remembered; the least recently used key is forgotten beyond it. Default 100_000. */
  maxKeys?: number;
}

interface KeyState {
  /** EWMA of completion tokens. */
  mean: number;
  samples: number;
}

/** See the module comment. Keys are opaque strings; the limiter uses `${accountId}\u0000${model}`. */
export class OutputEstimator {
  readonly #alpha: number;
  readonly #safety: number;
  readonly #minSamples: number;
  readonly #floor: number;
  readonly #priorFraction: number;
  readonly #priorMin: number;
  readonly #priorMax: number;
  readonly #maxKeys: number;
  readonly #keys = new Map<string, KeyState>();

  constructor(options: OutputEstimatorOptions = {}) {
    this.#alpha = options.alpha ?? 0.2;
    this.#safety = options.safetyFactor ?? 1.5;
    this.#minSamples = options.minSamples ?? 3;
    this.#floor = options.floorTokens ?? 256;
    this.#priorFraction = options.priorFraction ?? 0.25;
    this.#priorMin = options.priorMinTokens ?? 512;
    this.#priorMax = options.priorMaxTokens ?? 8192;
    this.#maxKeys = options.maxKeys ?? 100_000;
    if (!(this.#alpha > 0 && this.#alpha <= 1)) throw new RangeError("alpha must be in (0, 1]");
    if (!(this.#safety >= 1)) throw new RangeError("safetyFactor must be >= 1");
    if (!(this.#maxKeys >= 1)) throw new RangeError("maxKeys must be >= 1");
  }

  /**
   * Expected completion tokens for a request under `key` with budget `maxTokens`: an integer in
   * [min(floorTokens, maxTokens), maxTokens]. Returns 0 when `maxTokens` ≤ 0.
   */
  expected(key: string, maxTokens: number): number {
    const max = Math.floor(maxTokens);
    if (!(max > 0)) return 0;
    const prior = Math.min(max, clamp(Math.ceil(max * this.#priorFraction), this.#priorMin, this.#priorMax));
    const s = this.#keys.get(key);
    if (s) this.#touch(key, s);
    let est: number;
    if (!s || s.samples === 0) est = prior;
    else {
      est = Math.ceil(s.mean * this.#safety);
      // During warm-up stay at least as conservative as the prior: a couple of short answers are weak evidence.
      if (s.samples < this.#minSamples) est = Math.max(est, prior);
    }
    return clamp(est, Math.min(this.#floor, max), max);
  }

  /**
   * Records a finished request's completion length. `maxTokens` caps the observation (a provider cannot
   * legitimately exceed the budget; a garbage count must not poison the key). Negative/NaN inputs are ignored.
   */
  observe(key: string, completionTokens: number, maxTokens: number): void {
    if (!Number.isFinite(completionTokens) || completionTokens < 0) return;
    const cap = Number.isFinite(maxTokens) && maxTokens > 0 ? maxTokens : completionTokens;
    const x = Math.min(completionTokens, cap);
    const s = this.#keys.get(key);
    if (!s) {
      this.#keys.set(key, { mean: x, samples: 1 });
      if (this.#keys.size > this.#maxKeys) this.#keys.delete(this.#keys.keys().next().value as string);
      return;
    }
    s.mean = s.samples === 0 ? x : s.mean + this.#alpha * (x - s.mean);
    s.samples++;
    this.#touch(key, s);
  }

  /** The raw state for a key (for metrics/debugging); undefined when never observed. */
  peek(key: string): { meanTokens: number; samples: number } | undefined {
    const s = this.#keys.get(key);
    return s && { meanTokens: s.mean, samples: s.samples };
  }

  /** Number of keys currently remembered. */
  get size(): number {
    return this.#keys.size;
  }

  /** Moves a key to the most-recently-used end (Map keeps insertion order). */
  #touch(key: string, s: KeyState): void {
    this.#keys.delete(key);
    this.#keys.set(key, s);
  }
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}
