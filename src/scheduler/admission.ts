/**
 * KV-aware admission of one request to one loaded model slot.
 *
 * A request reserves `prompt + expected output` tokens of the slot's KV budget, where the expected output
 * comes from the {@link OutputEstimator} (an EWMA of recent completion lengths for the model, already times a
 * safety factor, clamped to the request's own max_tokens). The budget is the provider's reported
 * `tokenBudgetMax - tokenBudgetUsed`; when a slot does not report one we derive it from memory and the slot's
 * own `kvBytesPerToken` (never a flat constant).
 *
 * Why optimism never kills a request that really needs its full max_tokens:
 * 1. **Fits alone.** A request is only admitted where `prompt + max_tokens` fits the slot's whole budget, so
 *    it can always finish once its neighbours do.
 * 2. **The provider never preempts.** Its budget accounting grows as requests generate; when the slot is full
 *    it queues *new* admissions (numWaiting), it does not evict running ones. Our optimism therefore costs, at
 *    worst, queueing on that provider, never a killed stream.
 * 3. **Reservations track reality.** The coordinator records `usedTokens` per in-flight request as chunks
 *    stream and claims `max(reservedTokens, usedTokens + overrunMarginTokens)` for it, so a request that
 *    over-runs its estimate grows its claim and the slot stops attracting new work before it runs dry.
 *    On completion the claim is released (the registry drops the in-flight entry) and the observed length is
 *    fed back to the estimator, which reconciles future reservations.
 * 4. **Back-pressure.** A slot whose provider reports waiting requests admits nothing more from us until the
 *    queue clears, so a mis-estimate is self-limiting.
 *
 * Pure: no I/O, no clock.
 */
import type { InflightRequest, ModelSlot, ProviderView } from "../registry/types.js";
import { GIB, type SchedulerOptions } from "./scheduler-options.js";

/** What admission needs from an output-length estimator (satisfied by util/output-estimator.ts). */
export interface OutputEstimate {
  /** Expected completion tokens for `key` (the model id) with budget `maxTokens`, in [0, maxTokens]. */
  expected(key: string, maxTokens: number): number;
}

/** The slice of options admission reads. */
export type AdmissionOptions = Pick<
  SchedulerOptions,
  | "policy"
  | "outputMarginFactor"
  | "overrunMarginTokens"
  | "concurrencyLawK"
  | "qualityDecodeFloorTps"
  | "qualityOvercommit"
  | "fallbackMaxConcurrency"
  | "maxConcurrencyCeiling"
  | "osReserveGb"
  | "gpuMemoryFraction"
>;

/**
 * Output tokens to reserve for a request: the estimate (times the margin) bounded by max_tokens, unless a
 * plugged-in policy decides.
 */
export function expectedOutputTokens(
  model: string,
  maxTokens: number,
  estimator: OutputEstimate,
  options: Pick<SchedulerOptions, "policy" | "outputMarginFactor">,
): number {
  const max = Math.max(0, Math.floor(maxTokens));
  if (options.policy) return options.policy.reservedOutputTokens(max);
  return Math.min(max, Math.ceil(estimator.expected(model, max) * options.outputMarginFactor));
}

/** Tokens the coordinator holds for an in-flight request: its reservation, or more once it over-runs. */
export function inflightClaimTokens(r: InflightRequest, overrunMarginTokens: number): number {
  return Math.max(r.reservedTokens, r.usedTokens + overrunMarginTokens);
}

/** The coordinator's in-flight requests on a provider for one model. */
export function inflightFor(p: ProviderView, model: string): InflightRequest[] {
  const out: InflightRequest[] = [];
  for (const r of p.inflight.values()) if (r.model === model) out.push(r);
  return out;
}

/**
 * Requests active on the slot: what the provider last reported (running + waiting) plus what we dispatched
 * since that it has not reported yet.
 */
export function slotActiveRequests(p: ProviderView, slot: ModelSlot): number {
  let unseen = 0;
  for (const r of p.inflight.values()) if (r.model === slot.model && !r.seenByProvider) unseen++;
  return slot.numRunning + slot.numWaiting + unseen;
}

/**
 * Tokens of the slot's budget committed: the provider's own `tokenBudgetUsed` (which includes every request
 * it has seen, at its current length), plus the expected growth of those requests up to our claim, plus the
 * full claim of requests it has not reported yet (never double counted: `seenByProvider`).
 */
export function slotCommittedTokens(p: ProviderView, slot: ModelSlot, overrunMarginTokens: number): number {
  let extra = 0;
  for (const r of p.inflight.values()) {
    if (r.model !== slot.model) continue;
    const claim = inflightClaimTokens(r, overrunMarginTokens);
    extra += r.seenByProvider ? Math.max(0, claim - r.usedTokens) : claim;
  }
  return slot.tokenBudgetUsed + extra;
}

/**
 * The slot's KV budget in tokens: reported, else derived from memory (GPU share minus OS reserve minus the
 * weights of every loaded model) ÷ KV bytes per token. `undefined` when neither is known.
 */
export function slotTokenBudgetMax(
  p: ProviderView,
  slot: ModelSlot,
  weightsBytesOf: (model: string) => number,
  fallbackKvBytesPerToken: number | undefined,
  options: AdmissionOptions,
): number | undefined {
  if (slot.tokenBudgetMax > 0) return slot.tokenBudgetMax;
  const kv = options.policy ? options.policy.kvBytesPerToken : slot.kvBytesPerToken || fallbackKvBytesPerToken;
  if (!kv) return undefined;
  const total = p.totalMemoryGb || p.hardware.memoryGb;
  const usableGb = Math.min(total * options.gpuMemoryFraction, total - options.osReserveGb);
  let weights = 0;
  for (const s of p.slots) if (s.state !== "crashed") weights += weightsBytesOf(s.model);
  return Math.max(0, Math.floor((usableGb * GIB - weights) / kv));
}

/**
 * Solo decode rate of `model` (default: the slot's) on a provider: the coordinator's own measurement when it
 * has one; else the claim (the slot's observed EWMA, else the provider's benchmark) capped at the model's
 * physical ceiling (ProviderView.modelRates; registry/claim-bounds.ts).
 */
export function soloDecodeTps(
  p: ProviderView,
  slot: ModelSlot | undefined,
  model: string | undefined = slot?.model,
): number {
  const rates = model === undefined ? undefined : p.modelRates?.get(model);
  if (rates?.measuredDecodeTps !== undefined) return rates.measuredDecodeTps;
  const claim =
    (slot && slot.observedDecodeTps > 0 ? slot.observedDecodeTps : 0) ||
    p.decodeTps ||
    Math.sqrt(p.hardware.memoryBandwidthGbs || 100);
  return rates ? Math.min(claim, rates.decodeTpsCeiling) : claim;
}

/**
 * Most concurrent requests for the slot: the slot's max_concurrency (or a default), capped by the quality
 * law: with rate(n) = solo / (1 + k(n-1)), the largest n keeping ≥ the decode floor per stream, times the
 * overcommit factor (more streams below the floor still beat a queue, up to a point).
 */
export function slotConcurrencyCap(p: ProviderView, slot: ModelSlot, options: AdmissionOptions): number {
  const base =
    slot.maxConcurrency > 0
      ? Math.min(slot.maxConcurrency, options.maxConcurrencyCeiling)
      : slot.tokenBudgetMax > 0
        ? options.maxConcurrencyCeiling
        : options.fallbackMaxConcurrency;
  const solo = soloDecodeTps(p, slot);
  const quality = 1 + Math.max(0, solo / options.qualityDecodeFloorTps - 1) / options.concurrencyLawK;
  return Math.max(1, Math.min(base, Math.ceil(Math.floor(quality) * options.qualityOvercommit)));
}

export type AdmissionResult =
  | { ok: true; reservedTokens: number; budgetRemainingTokens: number | undefined; active: number; cap: number }
  | { ok: false; reason: "slot_state" | "concurrency" | "provider_queue" | "token_budget" | "too_large" };

/**
 * Decides whether a loaded slot can take a request reserving `promptTokens + expectedOutput` now.
 * `maxTokens` is the request's full budget, used only for the "fits alone" guarantee.
 */
export function admitToSlot(
  p: ProviderView,
  slot: ModelSlot,
  promptTokens: number,
  expectedOutput: number,
  maxTokens: number,
  weightsBytesOf: (model: string) => number,
  fallbackKvBytesPerToken: number | undefined,
  options: AdmissionOptions,
): AdmissionResult {
  if (slot.state !== "running" && slot.state !== "idle") return { ok: false, reason: "slot_state" };
  const active = slotActiveRequests(p, slot);
  const cap = slotConcurrencyCap(p, slot, options);
  if (active >= cap) return { ok: false, reason: "concurrency" };
  // The provider is already queueing: our estimates were optimistic there; send nothing more until it clears.
  if (slot.numWaiting > 0) return { ok: false, reason: "provider_queue" };
  const reservedTokens = promptTokens + expectedOutput;
  const budgetMax = slotTokenBudgetMax(p, slot, weightsBytesOf, fallbackKvBytesPerToken, options);
  if (budgetMax === undefined) return { ok: true, reservedTokens, budgetRemainingTokens: undefined, active, cap };
  if (promptTokens + maxTokens > budgetMax && (options.policy?.refusesOversized ?? true))
    return { ok: false, reason: "too_large" };
  const remaining = budgetMax - slotCommittedTokens(p, slot, options.overrunMarginTokens);
  if (reservedTokens > remaining) return { ok: false, reason: "token_budget" };
  return { ok: true, reservedTokens, budgetRemainingTokens: remaining - reservedTokens, active, cap };
}
