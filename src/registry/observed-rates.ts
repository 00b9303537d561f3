/**
 * The coordinator's own measurement of a provider's rates for one model: an EWMA of decode and prefill
 * tokens per second taken from requests it served, which the scheduler uses instead of the provider's claims
 * once it has one (claims are only clamped to physics: claim-bounds.ts).
 *
 * Samples, from one completed request:
 * - decode = completion tokens ÷ (complete − first content), scaled to a solo rate with the scheduler's
 *   concurrency law `rate(n) = solo / (1 + k(n−1))` (n = this request plus the others in flight on the
 *   model at completion), because the scheduler treats the rate as the single-stream one and degrades it
 *   itself;
 * - prefill = (prompt tokens + prompt tokens still waiting for their prefill on the Mac when it was
 *   dispatched) ÷ time to first content, because a Mac runs one prefill at a time; skipped when a model load
 *   preceded the first token, and, when the prompts ahead are unknown, unless the request was alone.
 * Short requests are skipped (timer and network noise dominate), and every sample is capped at the model's
 * physical ceiling. Pure: no I/O, no clock.
 */
import type { ModelRates } from "./types.js";

/** Weight of a new sample in the EWMA (the first sample is taken as is). */
export const RATE_EWMA_ALPHA = 0.3;
/** A decode sample needs at least this many completion tokens… */
export const MIN_DECODE_SAMPLE_TOKENS = 16;
/** …over at least this long, ms. */
export const MIN_DECODE_SAMPLE_MS = 50;
/** A prefill sample needs at least this many prompt tokens… */
export const MIN_PREFILL_SAMPLE_TOKENS = 256;
/** …and a time to first content of at least this long, ms. */
export const MIN_PREFILL_SAMPLE_MS = 20;
/**
 * The concurrency-law slope k in `rate(n) = solo / (1 + k(n−1))`, measured on M-series Macs. The one source of
 * the number: the scheduler's default `concurrencyLawK` (scheduler-options.ts) and the simulated Macs
 * (src/tools/fleet/mac-performance.ts) use it too, so the coordinator's model and the simulators cannot drift.
 */
export const RATE_CONCURRENCY_LAW_K = 0.27;

/** One completed request, as the dispatcher saw it. */
export interface RateObservation {
  /** The request (excluded when counting the others in flight). */
  requestId: string;
  /** Prompt tokens: the coordinator's own estimate (the provider's usage is a claim). */
  promptTokens: number;
  /** Completion tokens (provider-reported usage, bounded by `streamedChars` when given). */
  completionTokens: number;
  /** Characters of output the coordinator streamed: a token is at least one character, so this caps `completionTokens`. */
  streamedChars?: number;
  /** Dispatch to this provider → first content, ms. */
  ttftMs: number;
  /** First content → completion, ms. */
  decodeMs: number;
  /** The provider loaded the model for this request (its first-token time includes the load). */
  coldStart?: boolean;
}

/** What the registry knows about the Mac when the observation arrives. */
export interface ObservationContext {
  /** Other requests in flight on the provider for the same model. */
  otherStreamsOnModel: number;
  /** Other requests in flight on the provider, any model. */
  otherRequestsOnProvider: number;
  /** Prompt tokens of requests (any model) not yet streaming on the Mac when this one was dispatched; undefined = unknown. */
  promptTokensAhead: number | undefined;
}

/** Samples extracted from one observation; undefined when the request says nothing reliable about that rate. */
export interface RateSamples {
  decodeTps: number | undefined;
  prefillTps: number | undefined;
}

/** See the module comment. */
export function rateSamples(o: RateObservation, ctx: ObservationContext): RateSamples {
  const completion = o.streamedChars === undefined ? o.completionTokens : Math.min(o.completionTokens, o.streamedChars);
  let decodeTps: number | undefined;
  if (completion >= MIN_DECODE_SAMPLE_TOKENS && o.decodeMs >= MIN_DECODE_SAMPLE_MS) {
    const perStream = completion / (o.decodeMs / 1000);
    decodeTps = perStream * (1 + RATE_CONCURRENCY_LAW_K * Math.max(0, ctx.otherStreamsOnModel));
  }
  let prefillTps: number | undefined;
  const ahead = ctx.promptTokensAhead ?? (ctx.otherRequestsOnProvider === 0 ? 0 : undefined);
  if (
    !o.coldStart &&
    ahead !== undefined &&
    o.promptTokens >= MIN_PREFILL_SAMPLE_TOKENS &&
    o.ttftMs >= MIN_PREFILL_SAMPLE_MS
  ) {
    prefillTps = (o.promptTokens + ahead) / (o.ttftMs / 1000);
  }
  return { decodeTps: finiteOrUndefined(decodeTps), prefillTps: finiteOrUndefined(prefillTps) };
}

/** Folds samples into a model's rates: EWMA, each sample first capped at the model's ceiling. */
export function foldRates(prev: ModelRates, s: RateSamples): ModelRates {
  return {
    ...prev,
    measuredDecodeTps: fold(prev.measuredDecodeTps, s.decodeTps, prev.decodeTpsCeiling),
    measuredPrefillTps: fold(prev.measuredPrefillTps, s.prefillTps, prev.prefillTpsCeiling),
  };
}

function fold(prev: number | undefined, sample: number | undefined, ceiling: number): number | undefined {
  if (sample === undefined || !(sample > 0)) return prev;
  const x = Math.min(sample, ceiling);
  return prev === undefined ? x : prev + RATE_EWMA_ALPHA * (x - prev);
}

function finiteOrUndefined(x: number | undefined): number | undefined {
  return x !== undefined && Number.isFinite(x) ? x : undefined;
}
