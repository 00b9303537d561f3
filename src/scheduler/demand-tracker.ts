/**
 * Per-model demand signals for the warm-pool planner, fed by the dispatcher: arrivals, completions (with
 * their service time), capacity rejections and queue depth. Pure; time is passed in.
 *
 * Rates are exponentially time-decayed (half-life `halfLifeMs`): each event adds 1/τ and the sum decays as
 * e^(-Δt/τ), so `rate` is events per second over roughly the last τ and falls to zero when traffic stops.
 */

export interface DemandTrackerOptions {
  /** Half-life of the arrival and rejection rates, ms. Default 60_000. */
  halfLifeMs?: number;
  /** EWMA weight of the newest service time, (0, 1]. Default 0.1. */
  serviceAlpha?: number;
}

/** What the planner reads for one model. */
export interface ModelDemand {
  /** Arrivals per second (every request, admitted or not). */
  arrivalRatePerS: number;
  /** Mean time a request occupies a slot (dispatch to finish), ms; undefined until one completed. */
  meanServiceMs: number | undefined;
  /** Capacity rejections and queue timeouts per second. */
  pressurePerS: number;
  /** Requests waiting in the coordinator's queue now. */
  queueDepth: number;
}

interface Rate {
  value: number;
  atMs: number;
}

interface ModelState {
  arrivals: Rate;
  rejections: Rate;
  serviceMs: number | undefined;
  queueDepth: number;
}

/** See the module comment. */
export class DemandTracker {
  readonly #tauMs: number;
  readonly #alpha: number;
  readonly #models = new Map<string, ModelState>();

  constructor(options: DemandTrackerOptions = {}) {
    this.#tauMs = (options.halfLifeMs ?? 60_000) / Math.LN2;
    this.#alpha = options.serviceAlpha ?? 0.1;
  }

  recordArrival(model: string, nowMs: number): void {
    this.#bump(this.#state(model).arrivals, nowMs);
  }

  /** A request finished after occupying a slot for `serviceMs`. */
  recordCompletion(model: string, serviceMs: number, _nowMs: number): void {
    if (!(serviceMs >= 0)) return;
    const s = this.#state(model);
    s.serviceMs = s.serviceMs === undefined ? serviceMs : s.serviceMs + this.#alpha * (serviceMs - s.serviceMs);
  }

  /** A request was refused for capacity (queue full, queue timeout, or no room anywhere). */
  recordRejection(model: string, nowMs: number): void {
    this.#bump(this.#state(model).rejections, nowMs);
  }

  setQueueDepth(model: string, depth: number): void {
    this.#state(model).queueDepth = depth;
  }

  /** Demand for every model seen so far, as of `nowMs`. */
  snapshot(nowMs: number): Map<string, ModelDemand> {
    const out = new Map<string, ModelDemand>();
    for (const [model, s] of this.#models) {
      out.set(model, {
        arrivalRatePerS: this.#read(s.arrivals, nowMs),
        meanServiceMs: s.serviceMs,
        pressurePerS: this.#read(s.rejections, nowMs),
        queueDepth: s.queueDepth,
      });
    }
    return out;
  }

  #state(model: string): ModelState {
    let s = this.#models.get(model);
    if (!s) {
      s = { arrivals: { value: 0, atMs: 0 }, rejections: { value: 0, atMs: 0 }, serviceMs: undefined, queueDepth: 0 };
      this.#models.set(model, s);
    }
    return s;
  }

  #bump(r: Rate, nowMs: number): void {
    r.value = this.#read(r, nowMs) + 1000 / this.#tauMs;
    r.atMs = nowMs;
  }

  #read(r: Rate, nowMs: number): number {
    return r.value * Math.exp(-Math.max(0, nowMs - r.atMs) / this.#tauMs);
  }
}
