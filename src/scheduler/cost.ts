/**
 * Expected completion time of a request on a candidate provider, in ms: the quantity selection minimises.
 *
 *   cost = load (cold only) + queue ahead + prefill ahead + prefill + backlog ÷ aggregate rate
 *          + expected output ÷ per-stream rate + the slowdown it causes the Mac's other streams + health penalties
 *
 * Rates are the coordinator's own measurement when it has one, else the provider's claim (the slot's observed
 * EWMA, else its benchmark) capped at the model's physical ceiling; the whole cost is multiplied by the
 * provider's `costPenaltyFactor` (default 1). Rates are degraded by
 * concurrency with the measured law rate(n) = solo / (1 + k(n-1)) at n = the Mac's active streams + 1 (this
 * request included), every model's: decode is memory-bandwidth bound, so on a Mac with two models loaded a stream
 * of the other model slows this one as much as one of its own. While it decodes, the request also slows each of
 * the m streams already there from rate(m) to rate(m + 1); that time is charged to it (m·d·k / (1 + k·m) for a
 * decode of d), so a slightly faster Mac that is already busy does not win over an idle one: the choice minimises
 * the completion time it adds, not only its own.
 * The backlog term (tokens the slot still has to generate for others ÷ its aggregate rate) is what spreads
 * long requests over more Macs instead of piling them onto the fastest few. The prefill-ahead term (prompts of
 * requests dispatched to the Mac that have not streamed a token yet ÷ prefill rate) is there because a Mac
 * runs one prefill at a time: a newcomer's first token waits behind every prompt ahead of it, whatever the
 * model, so a burst of long prompts is spread instead of queued behind each other on one Mac.
 */
import { MAX_PREFILL_TO_MEASURED_DECODE } from "../registry/claim-bounds.js";
import type { ModelSlot, ProviderView } from "../registry/types.js";
import { slotActiveRequests, soloDecodeTps } from "./admission.js";
import { GIB, type SchedulerOptions } from "./scheduler-options.js";

export type CostOptions = Pick<
  SchedulerOptions,
  | "concurrencyLawK"
  | "prefillToDecodeRatio"
  | "loadBaseMs"
  | "loadMsPerGb"
  | "memoryPressurePenaltyMs"
  | "thermalFairPenaltyMs"
  | "thermalSeriousPenaltyMs"
>;

export interface CostBreakdown {
  /** Total expected completion time, ms. */
  costMs: number;
  /** Expected time to first token, ms (load + queue + prefills ahead + own prefill). */
  ttftMs: number;
}

/** Per-stream decode rate with `n` concurrent streams. */
export function perStreamTps(soloTps: number, n: number, k: number): number {
  return soloTps / (1 + k * Math.max(0, n - 1));
}

/**
 * Prefill rate of `model` (default: the slot's): the coordinator's own measurement when it has one; else the
 * claim (the slot's observed EWMA, else the benchmark, else decode × ratio) capped at the model's physical
 * ceiling and at MAX_PREFILL_TO_MEASURED_DECODE × the measured decode rate (ProviderView.modelRates).
 */
export function prefillTpsOf(
  p: ProviderView,
  slot: ModelSlot | undefined,
  options: Pick<SchedulerOptions, "prefillToDecodeRatio">,
  model: string | undefined = slot?.model,
): number {
  const rates = model === undefined ? undefined : p.modelRates?.get(model);
  if (rates?.measuredPrefillTps !== undefined) return rates.measuredPrefillTps;
  const claim =
    slot && slot.observedPrefillTps > 0
      ? slot.observedPrefillTps
      : p.prefillTps > 0
        ? p.prefillTps
        : soloDecodeTps(p, slot, model) * options.prefillToDecodeRatio;
  if (!rates) return claim;
  // Prefill is only measured on an otherwise idle Mac, so a busy liar would keep its claim: tie it to decode.
  const fromDecode =
    rates.measuredDecodeTps === undefined ? Infinity : rates.measuredDecodeTps * MAX_PREFILL_TO_MEASURED_DECODE;
  return Math.min(claim, rates.prefillTpsCeiling, fromDecode);
}

/** Expected cold-load time of a model on a provider, ms: what its slot last reported, else size-based. */
export function loadTimeMs(
  p: ProviderView,
  model: string,
  weightsBytes: number,
  options: Pick<SchedulerOptions, "loadBaseMs" | "loadMsPerGb">,
): number {
  const known = p.slots.find((s) => s.model === model && s.modelLoadTimeMs > 0);
  if (known) return known.modelLoadTimeMs;
  return options.loadBaseMs + (weightsBytes / GIB) * options.loadMsPerGb;
}

/** Health penalty, ms: memory pressure and thermal state (critical never gets here: it is a gate). */
export function healthPenaltyMs(p: ProviderView, options: CostOptions): number {
  const thermal =
    p.thermal === "fair" ? options.thermalFairPenaltyMs : p.thermal === "serious" ? options.thermalSeriousPenaltyMs : 0;
  return Math.max(0, p.memoryPressure) * options.memoryPressurePenaltyMs + thermal;
}

/** Expected tokens still to generate on a provider's slot for `model` (coordinator accounting). */
export function backlogTokens(p: ProviderView, model: string): number {
  let sum = 0;
  for (const r of p.inflight.values()) if (r.model === model) sum += Math.max(0, r.remainingOutputTokens);
  return sum;
}

/**
 * Time the Mac still needs for prefills ahead of a newcomer, ms: prompt tokens of the coordinator's in-flight
 * requests on it (any model) that have not streamed a token yet, each at its slot's prefill rate. Requests
 * dispatched without a known prompt size count nothing.
 */
export function prefillBacklogMs(p: ProviderView, options: Pick<SchedulerOptions, "prefillToDecodeRatio">): number {
  let ms = 0;
  for (const r of p.inflight.values()) {
    if (r.promptTokens === undefined || r.usedTokens > r.promptTokens) continue;
    const slot = p.slots.find((s) => s.model === r.model);
    ms += (r.promptTokens / Math.max(1, prefillTpsOf(p, slot, options, r.model))) * 1000;
  }
  return ms;
}

/** Requests admitted on the Mac's slots of models other than `model` (a multi-slot Mac's other streams). */
function otherModelsActive(p: ProviderView, model: string): number {
  let n = 0;
  for (const s of p.slots) if (s.model !== model) n += slotActiveRequests(p, s);
  return n;
}

/**
 * Cost of serving a request of `promptTokens` + `expectedOutput` on `p`. `slot` is the loaded slot (warm) or
 * undefined (cold: a load of `weightsBytes` is implied). `active` is the slot's current active requests.
 */
export function estimateCost(
  p: ProviderView,
  model: string,
  slot: ModelSlot | undefined,
  active: number,
  promptTokens: number,
  expectedOutput: number,
  weightsBytes: number,
  options: CostOptions,
  /** Load time still to wait when joining a load already under way (replaces the full load time), ms. */
  loadRemainingMs?: number,
): CostBreakdown {
  const solo = soloDecodeTps(p, slot, model);
  const n = active + 1;
  // Decode is memory-bandwidth bound, so the Mac's other models' streams slow this one as much as its own do.
  const others = active + otherModelsActive(p, model);
  const stream = perStreamTps(solo, others + 1, options.concurrencyLawK);
  const aggregate = stream * n;
  const load = slot ? 0 : (loadRemainingMs ?? loadTimeMs(p, model, weightsBytes, options));
  const backlog = backlogTokens(p, model);
  // Requests the provider itself queued wait for a running one to finish: about one mean remaining each.
  const meanRemaining = active > 0 ? backlog / active : 0;
  const queueAhead =
    slot && slot.numWaiting > 0 ? ((slot.numWaiting * meanRemaining) / Math.max(1e-6, stream)) * 1000 : 0;
  const prefill =
    prefillBacklogMs(p, options) + (promptTokens / Math.max(1, prefillTpsOf(p, slot, options, model))) * 1000;
  const decode = (expectedOutput / Math.max(1e-6, stream)) * 1000;
  // While it decodes (for d), each of the Mac's m other streams runs at rate(m + 1) instead of rate(m), so ends
  // d·(1 − rate(m + 1) ÷ rate(m)) = d·k ÷ (1 + k·m) later.
  const k = options.concurrencyLawK;
  const slowsOthers = (others * decode * k) / (1 + k * others);
  const backlogMs = (backlog / Math.max(1e-6, aggregate)) * 1000;
  const health = healthPenaltyMs(p, options);
  const ttftMs = load + queueAhead + prefill;
  // A provider caught over-claiming (e.g. usage) pays a multiplicative penalty on the quantity selection minimises.
  return { costMs: (ttftMs + backlogMs + decode + slowsOthers + health) * (p.costPenaltyFactor ?? 1), ttftMs };
}
