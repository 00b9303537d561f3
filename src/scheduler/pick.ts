/**
 * Provider selection: a registry snapshot and a request in, a decision out ({@link PickResult}), as data.
 *
 * Order of decisions:
 * 1. Unknown model (not in the catalog, advertised by nobody) → reject `model_not_found`.
 * 2. Gates ({@link checkGates}, shared with preflight and the final admit). Nobody passes → reject
 *    `model_unavailable` with the reason (or `context_overflow`), except: a catalog model with no provider
 *    connected, or providers only transiently blocked (draining, overheating), is queued: one may come back.
 * 3. Warm candidates whose slot admits the request within its quality concurrency ({@link admitToSlot});
 *    else, on cost alone, warm slots admitting beyond it (overcommitted) and cold candidates that pass the
 *    memory gate ({@link canColdLoad}), or providers already loading the model (joining the load). Within a
 *    tier, lowest expected completion
 *    time ({@link estimateCost}); near-ties (5 %) broken by cache affinity (rendezvous hashing) when the
 *    request has an `affinityKey`, else by load, then randomly. `avoidVersion` is a soft filter. (That choice
 *    within a tier is choose-in-tier.ts.)
 * 4. Capable providers exist but none has room → `queue` (reason "loading" when a load is under way).
 *    If no capable provider could ever hold the model (memory), → reject `model_unavailable`.
 *
 * Pure: no I/O; time, randomness, health and estimator are in {@link PickContext}.
 */
import type { ProviderView, RegistryView } from "../registry/types.js";
import {
  admitToSlot,
  expectedOutputTokens,
  inflightFor,
  slotConcurrencyCap,
  type OutputEstimate,
} from "./admission.js";
import { estimateCost, loadTimeMs } from "./cost.js";
import { checkGates, describeRejections, transientGateReasons, type GateReason } from "./gates.js";
import { type Candidate, chooseInTier } from "./choose-in-tier.js";
import { canColdLoad, couldEverLoad, evictionPending } from "./memory-gate.js";
import { resolveSchedulerOptions, type SchedulerOptions } from "./scheduler-options.js";
import type { HealthGates, PickResult, RouteRequest } from "./types.js";
import type { CatalogModel } from "../models/catalog.js";

/** A catalog model, optionally with its typical KV cost per token (src/models/catalog.ts has it). */
export type SchedulerCatalogModel = CatalogModel & { kvBytesPerToken?: number };

/** Everything {@link pick} needs besides the snapshot and the request. */
export interface PickContext {
  nowMs: number;
  /** Uniform [0, 1) source for tie-breaking (seeded in tests and the simulator). */
  random: () => number;
  health: HealthGates;
  /** Expected completion lengths, keyed by model id. */
  estimator: OutputEstimate;
  catalog: readonly SchedulerCatalogModel[];
  /** Scheduler options; defaults when omitted. Pass a resolved object on hot paths. */
  options?: Readonly<SchedulerOptions>;
  /** Retry-After to put on a `queue` decision, ms (from RequestQueue.retryAfterMs). Default options.defaultRetryAfterMs. */
  retryAfterMs?: number;
}

const defaults = resolveSchedulerOptions();

const strict = new WeakMap<Readonly<SchedulerOptions>, Readonly<SchedulerOptions>>();
/** The options with no overcommit (the quality concurrency itself), built once per options object. */
function strictOptions(o: Readonly<SchedulerOptions>): Readonly<SchedulerOptions> {
  let s = strict.get(o);
  if (!s) strict.set(o, (s = Object.freeze({ ...o, qualityOvercommit: 1 })));
  return s;
}

/**
 * The providers advertising `model`: the registry's per-model index when the view has one (no pass over the
 * fleet), else a filter, for hand-built views in tests and the simulator.
 */
export function advertisersOf(view: RegistryView, model: string): readonly ProviderView[] {
  return view.byModel
    ? (view.byModel.get(model) ?? [])
    : view.providers.filter((p) => p.models.some((m) => m.id === model));
}

/** Bytes of weights of `model` on `p`: its advertised build, else the catalog. */
export function weightsBytesFor(p: ProviderView, catalog: readonly SchedulerCatalogModel[]): (model: string) => number {
  return (model) =>
    p.models.find((m) => m.id === model)?.sizeBytes || catalog.find((m) => m.id === model)?.sizeBytes || 0;
}

/** See the module comment. */
export function pick(view: RegistryView, req: RouteRequest, ctx: PickContext): PickResult {
  const o = ctx.options ?? defaults;
  const entry = ctx.catalog.find((m) => m.id === req.model);
  const advertisers = advertisersOf(view, req.model);
  const retryAfterMs = ctx.retryAfterMs ?? o.defaultRetryAfterMs;
  if (!entry && advertisers.length === 0) {
    return {
      kind: "reject",
      code: "model_not_found",
      message: `The model '${req.model}' does not exist or is not served here.`,
    };
  }
  const prompt = req.traits.estimatedPromptTokens;
  const minOut = Math.min(o.minOutputTokens, Math.max(1, req.traits.maxTokens));
  if (advertisers.length === 0) {
    if (entry && entry.contextLength > 0 && prompt + minOut > entry.contextLength)
      return contextOverflow(req.model, entry.contextLength);
    // The caller named the machines (self-route, provider_serials): none is connected, so fail fast.
    if (req.pinnedAccountId !== undefined)
      return { kind: "reject", code: "model_unavailable", message: describeRejections(req.model, ["pinned_account"]) };
    if (req.allowedSerials !== undefined)
      return {
        kind: "reject",
        code: "model_unavailable",
        message: describeRejections(req.model, ["serial_not_allowed"]),
      };
    // Known but offline: stay queueable, a provider may connect.
    return { kind: "queue", reason: "all_busy", retryAfterMs };
  }

  // Gates run lazily as the walks below reach each provider. With a large fleet each walk starts at a random
  // offset and stops early (SchedulerOptions.candidateSample), so a decision's work is bounded.
  const reasons: GateReason[] = [];
  // Under pools, the verdicts on the pool's own members: they alone say whether the pool lacks a capability.
  const memberReasons: GateReason[] = [];
  const gated = (p: ProviderView): boolean => {
    const g = checkGates(p, req, ctx.nowMs, ctx.health, o);
    if (!g.ok) {
      reasons.push(g.reason);
      if (req.pools && p.pool !== undefined && req.pools.keys.has(p.pool)) memberReasons.push(g.reason);
    }
    return g.ok;
  };
  if (o.policy) {
    // A plugged-in policy (the routing simulator's baseline) selects among the providers past the shared gates.
    const capable = advertisers.filter(gated);
    if (capable.length === 0) return noneCapable(req, advertisers, reasons, memberReasons, retryAfterMs);
    const weightsOf = (p: ProviderView, m: string) => weightsBytesFor(p, ctx.catalog)(m);
    return o.policy.pick(
      capable,
      req,
      { nowMs: ctx.nowMs, random: ctx.random, health: ctx.health, retryAfterMs, weightsOf, entry },
      o,
    );
  }

  const expectedOut = expectedOutputTokens(req.model, req.traits.maxTokens, ctx.estimator, o);
  const reserved = prompt + expectedOut;
  const warm: Candidate[] = [];
  const overcommitted: Candidate[] = [];
  const cold: Candidate[] = [];
  let loading = false;
  let anyCouldHost = false;
  let capableCount = 0;
  const isWarmSlot = (p: ProviderView) =>
    p.slots.some((s) => s.model === req.model && (s.state === "running" || s.state === "idle"));

  // Pass 1: warm slots, from the registry's warm index when it has one.
  const warmList = view.warmByModel ? (view.warmByModel.get(req.model) ?? []) : advertisers.filter(isWarmSlot);
  for (let i = 0, start = walkStart(warmList.length, o.candidateSample, ctx.random); i < warmList.length; i++) {
    const p = warmList[(start + i) % warmList.length]!;
    if (!gated(p)) continue;
    capableCount++;
    anyCouldHost = true;
    if (evictionPending(p, req.model)) continue;
    const slot = p.slots.find((s) => s.model === req.model)!;
    const weightsOf = weightsBytesFor(p, ctx.catalog);
    const kvBytes = (slot.kvBytesPerToken || entry?.kvBytesPerToken) ?? 0;
    const adm = admitToSlot(p, slot, prompt, expectedOut, req.traits.maxTokens, weightsOf, kvBytes || undefined, o);
    if (!adm.ok) continue;
    const c = estimateCost(p, req.model, slot, adm.active, prompt, expectedOut, weightsOf(req.model), o);
    const cand = { p, costMs: c.costMs, load: adm.active / adm.cap, cold: false };
    // Beyond the quality concurrency a warm slot only wins on cost (kv-aware): a long request is better
    // served by loading an idle Mac than by slowing ten streams on this one.
    if (adm.active < slotConcurrencyCap(p, slot, strictOptions(o))) warm.push(cand);
    else overcommitted.push(cand);
    if (warm.length >= o.candidateSample) break;
  }

  // Pass 2: loads under way and cold Macs, only when no warm slot can take the request.
  if (warm.length === 0) {
    let viable = 0;
    for (let i = 0, start = walkStart(advertisers.length, o.candidateSample, ctx.random); i < advertisers.length; i++) {
      const p = advertisers[(start + i) % advertisers.length]!;
      if (isWarmSlot(p) || !gated(p)) continue; // warm ones were judged in pass 1
      capableCount++;
      const weightsOf = weightsBytesFor(p, ctx.catalog);
      const weights = weightsOf(req.model);
      const slot = p.slots.find((s) => s.model === req.model);
      if (slot?.state === "loading" || p.pendingLoads.has(req.model)) {
        loading = true;
        anyCouldHost = true;
        // Join a load under way (competing with cold loads on cost) rather than start another Mac loading for
        // every request of a burst. Until the slot reports, stay within the conservative default concurrency.
        const active = inflightFor(p, req.model).length;
        if (active >= o.fallbackMaxConcurrency) continue;
        const sentAt = p.pendingLoads.get(req.model) ?? ctx.nowMs;
        const remaining = Math.max(0, loadTimeMs(p, req.model, weights, o) - (ctx.nowMs - sentAt));
        const c = estimateCost(p, req.model, undefined, active, prompt, expectedOut, weights, o, remaining);
        cold.push({ p, costMs: c.costMs, load: active / o.fallbackMaxConcurrency, cold: false });
      } else {
        if (couldEverLoad(p, weights, o)) anyCouldHost = true;
        const kvBytes = (slot?.kvBytesPerToken || entry?.kvBytesPerToken) ?? 0;
        const mg = canColdLoad(
          p,
          req.model,
          weights,
          prompt + req.traits.maxTokens,
          kvBytes,
          ctx.nowMs,
          ctx.health,
          weightsOf,
          o,
        );
        if (!mg.ok) continue;
        const c = estimateCost(p, req.model, undefined, 0, prompt, expectedOut, weights, o);
        cold.push({ p, costMs: c.costMs, load: 0, cold: true });
      }
      if (++viable >= o.candidateSample) break;
    }
  }
  if (capableCount === 0) return noneCapable(req, advertisers, reasons, memberReasons, retryAfterMs);

  const chosen = chooseInTier(warm, req, ctx, o) ?? chooseInTier([...overcommitted, ...cold], req, ctx, o);
  if (chosen) {
    return {
      kind: "picked",
      providerId: chosen.c.p.id,
      reason: chosen.c.cold ? "cold" : chosen.reason,
      // cold = a LoadModel is implied; joining a load under way implies none.
      cold: chosen.c.cold,
      reservedTokens: reserved,
      costMs: chosen.c.costMs,
    };
  }
  if (!anyCouldHost) {
    return {
      kind: "reject",
      code: "model_unavailable",
      message: `${req.model}: no connected provider has enough memory to load it`,
    };
  }
  return { kind: "queue", reason: loading ? "loading" : "all_busy", retryAfterMs };
}

/**
 * Where a walk over a candidate list of `length` starts: at 0 when the list is small (all of it is considered,
 * deterministically), else at a random offset, so that stopping after a sample is a fair draw. (An index loop,
 * not a generator: this runs twice per decision.)
 */
function walkStart(length: number, sample: number, random: () => number): number {
  return length <= sample ? 0 : Math.floor(random() * length);
}

/**
 * No advertiser passed the gates: queue if that may change soon, else say why. Under pools: when the pool's
 * own members all fail on what they can do, that is the answer (a capability gap in the pool is a 503 even if
 * another pool's Mac could do it); when the pool has no member and only the pool gate refused, the pool is
 * exhausted.
 */
function noneCapable(
  req: RouteRequest,
  advertisers: readonly ProviderView[],
  reasons: readonly GateReason[],
  memberReasons: readonly GateReason[],
  retryAfterMs: number,
): PickResult {
  if (reasons.some((r) => transientGateReasons.has(r))) return { kind: "queue", reason: "all_busy", retryAfterMs };
  if (req.pools) {
    if (memberReasons.length > 0)
      return { kind: "reject", code: "model_unavailable", message: describeRejections(req.model, memberReasons) };
    if (reasons.includes("other_pool")) return { kind: "queue", reason: "pool_exhausted", retryAfterMs };
  }
  if (reasons.every((r) => r === "context_too_small")) {
    const ctxMax = Math.max(...advertisers.map((p) => p.models.find((m) => m.id === req.model)?.contextLength ?? 0));
    return contextOverflow(req.model, ctxMax);
  }
  return { kind: "reject", code: "model_unavailable", message: describeRejections(req.model, reasons) };
}

function contextOverflow(model: string, contextLength: number): PickResult {
  return {
    kind: "reject",
    code: "context_overflow",
    message: `${model}: the prompt does not fit the model's context of ${contextLength} tokens`,
  };
}
