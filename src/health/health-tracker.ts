/**
 * The health state behind the scheduler's {@link HealthGates}: per-shape cooldowns, the per-provider breaker
 * and load cooldowns, fed by the dispatcher's request outcomes. Pure and clock-injected (every call takes
 * `nowMs`); the only side effect is counting metrics through an injectable `count`.
 *
 * Keys are provider ids, not serials. The registry mints a new provider id for every session, so a machine
 * that reconnects starts clean by construction (the "a provider that re-registers with a fresh
 * session starts clean"), and a gate lookup needs nothing but the id the scheduler already has. The old
 * session's entries are dropped by {@link HealthTracker.forgetProvider} (call it with the old id when the
 * session closes or its serial re-registers) and, failing that, by the sweeps once they lapse. The price:
 * a flapping machine escapes its breaker by reconnecting; reconnect storms are the registry's to damp.
 */
import type { RequestShape } from "../inference/types.js";
import type { ProviderId } from "../registry/types.js";
import type { HealthGates } from "../scheduler/types.js";
import { count as defaultCount, type Tags } from "../telemetry/metrics.js";
import { LoadCooldowns, type LoadCooldownOptions } from "./load-cooldowns.js";
import { ProviderBreaker, type BreakerTransition, type ProviderBreakerOptions } from "./provider-breaker.js";
import { ShapeCooldowns, type ShapeCooldownOptions, type StrikeResult, type SuccessResult } from "./shape-cooldowns.js";

/**
 * How one dispatched request ended, from the dispatcher's point of view.
 * - `success`: a complete stream with output. Clears its own shape; closes a half-open breaker.
 * - `incomplete`: the client aborted, or the stream ended clean with zero output. Recorded nowhere: it proves
 *   neither health nor sickness (a zero-output close the dispatcher deems a fault should be `sickness`).
 * - `sickness`: see {@link classifyProviderError}; includes 502 disconnects and 504 stalls.
 * - `capacity`, `client_error`: never count against the provider.
 */
export type OutcomeKind = "success" | "incomplete" | "sickness" | "capacity" | "client_error";

export interface Outcome {
  providerId: ProviderId;
  model: string;
  shape: RequestShape;
  kind: OutcomeKind;
  nowMs: number;
}

/** What recording an outcome changed, for the dispatcher's logs. */
export interface OutcomeEffect {
  cooldown: StrikeResult | SuccessResult | { kind: "none" };
  breaker: BreakerTransition;
}

/** Why a provider may not serve (model, shape) right now, as far as health is concerned. */
export type HealthVerdict = "ok" | "shape_cooldown" | "breaker_open";

export interface HealthTrackerOptions {
  shape?: ShapeCooldownOptions;
  breaker?: ProviderBreakerOptions;
  load?: LoadCooldownOptions;
  /** Metric sink; defaults to `count` from telemetry/metrics.ts. */
  count?: (name: string, tags?: Tags) => void;
}

/** Sizes of the internal maps, for memory checks and an admin view. */
export interface HealthTrackerStats {
  shapeEntries: number;
  breakerEntries: number;
  loadEntries: number;
}

/**
 * Health state for routing. `isCooledDown` is the strict gate (shape cooldown OR breaker open). Fail-open
 * applies to the breaker only and needs the candidate set, so it is offered two ways: {@link filterFailOpen}
 * for a caller holding the candidates, and {@link withoutBreaker} for a scheduler that re-runs its pick.
 */
export class HealthTracker implements HealthGates {
  readonly #shapes: ShapeCooldowns;
  readonly #breaker: ProviderBreaker;
  readonly #load: LoadCooldowns;
  readonly #count: (name: string, tags?: Tags) => void;

  constructor(options: HealthTrackerOptions = {}) {
    this.#count = options.count ?? defaultCount;
    this.#shapes = new ShapeCooldowns({
      ...options.shape,
      onExpired: (providerId, model, shape) => {
        this.#count("routing.cooldown_cleared", { shape, reason: "expired", provider_id: providerId });
        options.shape?.onExpired?.(providerId, model, shape);
      },
    });
    this.#breaker = new ProviderBreaker(options.breaker);
    this.#load = new LoadCooldowns(options.load);
  }

  /** Errors within the strike window that cool a (provider, model, shape): said in owners' verdicts. */
  get shapeStrikesToCool(): number {
    return this.#shapes.strikesToCool;
  }

  /** Records how one dispatched request ended on one provider. */
  recordOutcome(o: Outcome): OutcomeEffect {
    switch (o.kind) {
      case "success": {
        const cooldown = this.#shapes.recordSuccess(o.providerId, o.model, o.shape, o.nowMs);
        if (cooldown.kind === "cleared")
          this.#count("routing.cooldown_cleared", { shape: o.shape, reason: "success", provider_id: o.providerId });
        return {
          cooldown,
          breaker: this.#breakerMetric(this.#breaker.recordSuccess(o.providerId, o.nowMs), o.providerId),
        };
      }
      case "sickness": {
        const cooldown = this.#shapes.recordSickness(o.providerId, o.model, o.shape, o.nowMs);
        if (cooldown.kind === "entered")
          this.#count("routing.cooldown_entered", {
            shape: o.shape,
            provider_id: o.providerId,
            model: o.model,
            reason: "sickness",
          });
        return {
          cooldown,
          breaker: this.#breakerMetric(this.#breaker.recordFault(o.providerId, o.nowMs), o.providerId),
        };
      }
      case "incomplete":
      case "capacity":
      case "client_error":
        return { cooldown: { kind: "none" }, breaker: { kind: "none" } };
    }
  }

  /** Records a (provider, model) load refusal (insufficient memory / model load failed; see `isLoadRefusal`). */
  recordLoadRefusal(providerId: ProviderId, model: string, nowMs: number): void {
    this.#load.recordRefusal(providerId, model, nowMs);
  }

  /**
   * Drops everything known about a provider id: its shape cooldowns, breaker and load cooldowns. Call it when
   * the session ends or the same serial re-registers (with the old session's id).
   */
  forgetProvider(providerId: ProviderId): void {
    for (const shape of this.#shapes.forget(providerId)) {
      this.#count("routing.cooldown_cleared", { shape, reason: "forgotten", provider_id: providerId });
    }
    if (this.#breaker.forget(providerId))
      this.#count("routing.provider_breaker", { state: "closed", provider_id: providerId });
    this.#load.forget(providerId);
  }

  /** Strict gate: (provider, model, shape) cooled, or the provider's breaker open (half-open admits). */
  isCooledDown(providerId: ProviderId, model: string, shape: RequestShape, nowMs: number): boolean {
    return this.verdict(providerId, model, shape, nowMs) !== "ok";
  }

  /** (provider, model) refused a load recently: do not route cold requests for `model` there. */
  isLoadCooledDown(providerId: ProviderId, model: string, nowMs: number): boolean {
    return this.#load.isCooledDown(providerId, model, nowMs);
  }

  /** The shape cooldown alone (never fail-open). */
  isShapeCooledDown(providerId: ProviderId, model: string, shape: RequestShape, nowMs: number): boolean {
    return this.#shapes.isCooledDown(providerId, model, shape, nowMs);
  }

  /** The provider breaker alone: true while open and its cool-down not over. */
  isBreakerOpen(providerId: ProviderId, nowMs: number): boolean {
    return this.#breaker.isOpen(providerId, nowMs);
  }

  /** Which health gate blocks the provider; the shape cooldown is reported first (it is never fail-open). */
  verdict(providerId: ProviderId, model: string, shape: RequestShape, nowMs: number): HealthVerdict {
    if (this.#shapes.isCooledDown(providerId, model, shape, nowMs)) return "shape_cooldown";
    if (this.#breaker.isOpen(providerId, nowMs)) return "breaker_open";
    return "ok";
  }

  /**
   * Applies the health gates to candidates that already pass every other gate (model, version, template,
   * vision, exclusions), with breaker fail-open: if no candidate is `ok` but some are blocked only by the
   * breaker, those are admitted (`failOpen: true`). Shape-cooled candidates are never admitted: a cooldown
   * means the request is known to fail there, and an honest 503 beats a third crash. An empty result means
   * the caller should fail fast (model_unavailable).
   */
  filterFailOpen<T>(
    candidates: readonly T[],
    idOf: (candidate: T) => ProviderId,
    model: string,
    shape: RequestShape,
    nowMs: number,
  ): { admitted: T[]; failOpen: boolean } {
    const ok: T[] = [];
    const breakerOnly: T[] = [];
    for (const c of candidates) {
      const v = this.verdict(idOf(c), model, shape, nowMs);
      if (v === "ok") ok.push(c);
      else if (v === "breaker_open") breakerOnly.push(c);
    }
    if (ok.length > 0 || breakerOnly.length === 0) return { admitted: ok, failOpen: false };
    return { admitted: breakerOnly, failOpen: true };
  }

  /**
   * A gates view that ignores the provider breaker (shape and load cooldowns still apply). For a scheduler
   * whose strict pick (with `this`) found no provider at all: pick again with this view. Use it only for that
   * second pass, so a breaker-open machine is admitted only when nothing else could serve.
   */
  withoutBreaker(): HealthGates {
    return {
      isCooledDown: (p, m, s, nowMs) => this.#shapes.isCooledDown(p, m, s, nowMs),
      isLoadCooledDown: (p, m, nowMs) => this.#load.isCooledDown(p, m, nowMs),
    };
  }

  /** Drops every lapsed entry now (writes also sweep, amortized); call it periodically if convenient. */
  sweep(nowMs: number): void {
    this.#shapes.sweep(nowMs);
    this.#breaker.sweep(nowMs);
    this.#load.sweep(nowMs);
  }

  stats(): HealthTrackerStats {
    return { shapeEntries: this.#shapes.size, breakerEntries: this.#breaker.size, loadEntries: this.#load.size };
  }

  #breakerMetric(t: BreakerTransition, providerId: ProviderId): BreakerTransition {
    if (t.kind === "opened") this.#count("routing.provider_breaker", { state: "open", provider_id: providerId });
    else if (t.kind === "closed") this.#count("routing.provider_breaker", { state: "closed", provider_id: providerId });
    return t;
  }
}
