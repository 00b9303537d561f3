/**
 * The warm-pool planner: how many Macs should hold each model loaded, and which idle ones to send LoadModel.
 *
 * Target per model (Little's law): L = max(λ·E[S], requests active now) + queue depth, where λ is the
 * arrival rate and E[S] the *measured* mean service time (so long generations count fully: the gemma case of
 * the load-test report). target = ⌈L × headroom ÷ q⌉ + burst buffer (+1 under rejection pressure), where q is
 * the streams planned per warm Mac: one with pools off — a Mac per request in flight while capable Macs are
 * there (issue 18: requests stacking on a few warm Macs while capable ones sat cold was the load test's
 * pathology, and the clairvoyant bound in the routing simulator spreads that way) — and under pools the
 * quality concurrency of a typical capable Mac (the most streams that keep the decode floor), so that pool
 * members stay empty for a pool a burst starves. Admission still stacks up to the quality concurrency (and
 * overcommits beyond it) when no other Mac is warm. Clamped to [per-model floor, capable Macs]. The target is met
 * by warm capacity, not a head count: a holder counts as its decode rate's share of the typical capable Mac's
 * (at most one), so slow holders do not stand in for the fast Macs requests would rather stack on.
 *
 * Loads go only to idle, capable providers (the shared gates, and the memory gate aligned with the
 * provider's own load rule), never evict a busy model or one loaded less than `minDwellMs` ago or whose own
 * model is not in surplus, and are bounded per tick and globally. Pure: returns the loads as data.
 */
import type { ProviderView, RegistryView } from "../registry/types.js";
import { slotConcurrencyCap, soloDecodeTps } from "./admission.js";
import type { ModelDemand } from "./demand-tracker.js";
import { checkGates } from "./gates.js";
import { canColdLoad } from "./memory-gate.js";
import { advertisersOf, weightsBytesFor, type SchedulerCatalogModel } from "./pick.js";
import type { SchedulerOptions } from "./scheduler-options.js";
import type { HealthGates, RouteRequest } from "./types.js";

export interface WarmPoolOptions {
  scheduler: Readonly<SchedulerOptions>;
  catalog: readonly SchedulerCatalogModel[];
  health: HealthGates;
  /** Most LoadModel commands per tick. Default 4. */
  maxLoadsPerTick?: number;
  /** Most loads outstanding across the fleet. Default 16. */
  maxPendingLoads?: number;
  /** A model stays loaded at least this long before the planner may replace it, ms. Default 300_000. */
  minDwellMs?: number;
  /** Extra warm Macs beyond Little's law. Default 1. */
  burstBuffer?: number;
  /** Multiplier on L. Default 1.25. */
  headroomFactor?: number;
  /**
   * Streams the target plans per warm Mac (q in the module comment). Default: 1 with pools off; under pools the
   * quality concurrency of a typical capable Mac.
   */
  streamsPerWarmMac?: number;
  /** Rejections per second above which one more Mac is warmed. Default 0.01. */
  pressureThresholdPerS?: number;
  /** Per-model minimum warm Macs. Default none. */
  minWarm?: Readonly<Record<string, number>>;
  /** When each provider last received a LoadModel (for the dwell rule), ms. */
  lastLoadAtMs?: ReadonlyMap<string, number>;
  /** Service time used before any completion was measured, ms. Default 30_000. */
  defaultServiceMs?: number;
  /**
   * Under model pools: the pools whose providers may hold `model` (undefined = pools off). Only their members
   * count as capable and receive loads: a load sent to another pool's Mac would be refused or wasted (review
   * finding "filter warm-pool candidates before load_model").
   */
  poolsOf?(model: string): ReadonlySet<string> | undefined;
}

/**
 * The public providers advertising `model` that its pools allow (all public ones with pools off). A private
 * machine is its owner's: public demand never loads models onto it.
 */
function poolCapable(view: RegistryView, model: string, options: WarmPoolOptions): readonly ProviderView[] {
  const all = advertisersOf(view, model).filter((p) => p.privateOnly !== true);
  const keys = options.poolsOf?.(model);
  return keys === undefined ? all : all.filter((p) => p.pool !== undefined && keys.has(p.pool));
}

export interface WarmPoolPlan {
  load: { providerId: string; model: string }[];
  /** Target and current warm count per model (for metrics and the simulator). */
  targets: Map<string, { target: number; warm: number }>;
}

/** True if the provider has the model loaded (running or idle) or a load under way. */
export function holdsModel(p: ProviderView, model: string): boolean {
  if (p.pendingLoads.has(model)) return true;
  return p.slots.some(
    (s) => s.model === model && (s.state === "running" || s.state === "idle" || s.state === "loading"),
  );
}

function isIdle(p: ProviderView): boolean {
  if (p.status === "draining" || p.inflight.size > 0 || p.pendingLoads.size > 0) return false;
  return p.slots.every((s) => s.numRunning === 0 && s.numWaiting === 0 && s.state !== "loading");
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.floor(s.length / 2)]!;
}

/** See the module comment. */
export function planWarmPool(
  view: RegistryView,
  demand: ReadonlyMap<string, ModelDemand>,
  nowMs: number,
  options: WarmPoolOptions,
): WarmPoolPlan {
  const o = options.scheduler;
  const maxLoads = options.maxLoadsPerTick ?? 4;
  const pendingNow = view.providers.reduce((n, p) => n + p.pendingLoads.size, 0);
  let budget = Math.min(maxLoads, Math.max(0, (options.maxPendingLoads ?? 16) - pendingNow));
  const models = new Set<string>([...demand.keys(), ...Object.keys(options.minWarm ?? {})]);
  const targets = new Map<string, { target: number; warm: number }>();
  const deficits: { model: string; deficit: number; ratio: number }[] = [];

  for (const model of models) {
    const d = demand.get(model);
    // From the registry's per-model index: a tick must not scan the whole fleet per model (at 10,000 providers
    // that stalled the event loop for ~20 ms every tick).
    const capable = poolCapable(view, model, options);
    const holders = capable.filter((p) => holdsModel(p, model));
    // The Go policy (o.policy) plans at the quality concurrency, as its controller does.
    const q =
      options.streamsPerWarmMac ??
      (options.poolsOf === undefined && !o.policy
        ? 1
        : qualityConcurrency(holders.length > 0 ? holders : capable, model, o));
    let active = 0;
    for (const p of holders) for (const r of p.inflight.values()) if (r.model === model) active++;
    let serviceMs = d?.meanServiceMs ?? options.defaultServiceMs ?? 30_000;
    if (o.policy) serviceMs = o.policy.warmPool.serviceTimeMs(holders[0] ?? capable[0]);
    const L = Math.max((d?.arrivalRatePerS ?? 0) * (serviceMs / 1000), active) + (d?.queueDepth ?? 0);
    const headroom = o.policy ? o.policy.warmPool.headroomFactor : (options.headroomFactor ?? 1.25);
    let target = L > 0 ? Math.ceil((L * headroom) / q) + (options.burstBuffer ?? 1) : 0;
    const pressureAddsOne = o.policy?.warmPool.pressureAddsOne ?? true;
    if ((d?.pressurePerS ?? 0) > (options.pressureThresholdPerS ?? 0.01) && pressureAddsOne) target += 1;
    target = Math.min(Math.max(target, options.minWarm?.[model] ?? 0), capable.length);
    targets.set(model, { target, warm: holders.length });
    const warm = o.policy ? holders.length : effectiveWarm(holders, capable, model);
    if (target > warm) deficits.push({ model, deficit: Math.ceil(target - warm), ratio: (target - warm) / target });
  }

  const load: { providerId: string; model: string }[] = [];
  const used = new Set<string>();
  deficits.sort((a, b) => b.ratio - a.ratio);
  // Round-robin over models in deficit so one model cannot take the whole tick.
  while (budget > 0 && deficits.some((d) => d.deficit > 0)) {
    let progressed = false;
    for (const d of deficits) {
      if (budget === 0 || d.deficit === 0) continue;
      const p = bestLoadCandidate(view, d.model, nowMs, used, targets, options);
      if (!p) {
        d.deficit = 0;
        continue;
      }
      load.push({ providerId: p.id, model: d.model });
      used.add(p.id);
      d.deficit--;
      budget--;
      progressed = true;
    }
    if (!progressed) break;
  }
  return { load, targets };
}

/**
 * Warm Macs as capacity: each holder weighs its solo decode rate for the model over the capable Macs' median rate,
 * at most 1. A slow holder (a 24 GB M2 holding qwen3-8b decodes at a quarter of the typical Mac's rate) takes the
 * requests nobody faster can, so counting it as a whole warm Mac let requests stack on the fast ones while
 * capable Macs stayed cold (issue 18's spread).
 */
function effectiveWarm(holders: readonly ProviderView[], capable: readonly ProviderView[], model: string): number {
  const step = Math.max(1, Math.floor(capable.length / 256));
  const rates: number[] = [];
  for (let i = 0; i < capable.length; i += step) rates.push(soloDecodeTps(capable[i]!, undefined, model));
  const typical = median(rates);
  if (!(typical > 0)) return holders.length;
  let warm = 0;
  for (const p of holders) warm += Math.min(1, soloDecodeTps(p, undefined, model) / typical);
  return warm;
}

/** Typical quality concurrency (no overcommit) among providers for a model: the median of an even sample. */
function qualityConcurrency(providers: readonly ProviderView[], model: string, o: Readonly<SchedulerOptions>): number {
  const step = Math.max(1, Math.floor(providers.length / 256));
  const sample = step === 1 ? providers : providers.filter((_, i) => i % step === 0);
  const caps = sample.map((p) => {
    const slot = p.slots.find((s) => s.model === model) ?? emptySlot(model);
    return slotConcurrencyCap(p, slot, { ...o, qualityOvercommit: 1 });
  });
  return Math.max(1, median(caps) || o.fallbackMaxConcurrency);
}

/** A loaded-nothing slot for `model`: what a provider that could host it offers before a load. */
export function emptySlot(model: string) {
  return {
    model,
    state: "idle" as const,
    numRunning: 0,
    numWaiting: 0,
    maxConcurrency: 0,
    tokenBudgetUsed: 0,
    tokenBudgetMax: 1,
    kvBytesPerToken: 0,
    observedDecodeTps: 0,
    observedPrefillTps: 0,
    modelLoadTimeMs: 0,
  };
}

function bestLoadCandidate(
  view: RegistryView,
  model: string,
  nowMs: number,
  used: ReadonlySet<string>,
  targets: ReadonlyMap<string, { target: number; warm: number }>,
  options: WarmPoolOptions,
): ProviderView | undefined {
  const o = options.scheduler;
  const entry = options.catalog.find((m) => m.id === model);
  const keys = options.poolsOf?.(model);
  const probe: RouteRequest = {
    requestId: "warm-pool",
    model,
    traits: { maxTokens: 1, estimatedPromptTokens: 0, hasTools: false, requiresVision: false, stream: false },
    shape: "base",
    exclude: new Set(),
    ...(keys !== undefined ? { pools: { keys, reassign: false } } : {}),
  };
  const cands: ProviderView[] = [];
  for (const p of poolCapable(view, model, options)) {
    if (used.has(p.id) || holdsModel(p, model) || !isIdle(p)) continue;
    if (!checkGates(p, probe, nowMs, options.health, o).ok) continue;
    const weightsOf = weightsBytesFor(p, options.catalog);
    const mg = canColdLoad(
      p,
      model,
      weightsOf(model),
      4096,
      entry?.kvBytesPerToken ?? 0,
      nowMs,
      options.health,
      weightsOf,
      o,
    );
    if (!mg.ok) continue;
    if (mg.evicts !== undefined) {
      const t = targets.get(mg.evicts);
      const last = options.lastLoadAtMs?.get(p.id);
      if (last !== undefined && nowMs - last < (options.minDwellMs ?? 300_000)) continue;
      if (t && t.warm <= t.target) continue; // the evicted model needs its Macs too
    }
    cands.push(p);
  }
  // Empty Macs first (no eviction), then the fastest.
  cands.sort(
    (a, b) =>
      a.slots.length - b.slots.length ||
      soloDecodeTps(b, undefined, model) - soloDecodeTps(a, undefined, model) ||
      (a.id < b.id ? -1 : 1),
  );
  return cands[0];
}
