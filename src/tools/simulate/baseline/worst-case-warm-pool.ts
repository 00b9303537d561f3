/**
 * The Go coordinator's warm-pool controller (../shared/reference/go-coordinator.md §3.8;
 * S:registry/warm_pool_{controller,target,state}.go), modelled for the routing simulator's `worst-case`
 * policy. Our own planner is warm-pool.ts.
 *
 * Every tick (10 s):
 * - spill arrivals (requests that found no warm slot: queued, cold-dispatched or refused) feed an EWMA of the
 *   spill rate with α = 0.3;
 * - Little's law: L = running + waiting + queued + spill rate × E[S], with E[S] sized for a 512-token prompt
 *   and a 256-token completion and clamped to [0.5 s, 2 min] ({@link worstCaseServiceTimeMs}), so long
 *   generations are under-counted;
 * - target_warm = ⌈L ÷ quality concurrency⌉ + burst buffer 1 (+1 under capacity-reject / cold-dispatch
 *   pressure, thresholds 1), at least the per-model floor;
 * - LoadModel only to idle providers passing the gates and Go's cold-load gate, never forcing an unload,
 *   respecting a 5 min dwell; 4 loads per tick rising to 16 as the gap × 0.5 grows, ≤ 16 pending globally.
 * {@link GoWarmPool.kick} is `kickColdDispatch` (§3.3): an enqueue starts one swap for the model when none
 * is under way. Pure: time is passed in; loads come back as data.
 */
import type { ProviderView, RegistryView } from "../../../registry/types.js";
import { slotActiveRequests, slotConcurrencyCap, soloDecodeTps } from "../../../scheduler/admission.js";
import { checkGates } from "../../../scheduler/gates.js";
import type { SchedulerOptions } from "../../../scheduler/scheduler-options.js";
import type { HealthGates, RouteRequest } from "../../../scheduler/types.js";
import type { CatalogModel } from "../../../models/catalog.js";
import { emptySlot, holdsModel, type WarmPoolPlan } from "../../../scheduler/warm-pool.js";
import { worstCaseColdAdmits, worstCaseServiceTimeMs } from "./worst-case-policy.js";

export interface GoWarmPoolOptions {
  scheduler: Readonly<SchedulerOptions>;
  catalog: readonly CatalogModel[];
  health: HealthGates;
  /** Tick period, ms (the spill EWMA is per tick). Default 10_000. */
  tickMs?: number;
  /** When each provider last received a LoadModel (dwell rule), ms. */
  lastLoadAtMs?: ReadonlyMap<string, number>;
  /** Requests in the coordinator queue for a model. */
  queueDepth: (model: string) => number;
}

const ALPHA = 0.3;
const MIN_DWELL_MS = 300_000;
const BURST_BUFFER = 1;
const LOADS_PER_TICK = 4;
const LOADS_PER_TICK_CEILING = 16;
const MAX_PENDING_LOADS = 16;
const FALLBACK_QUALITY_CONCURRENCY = 4;

/** See the module comment. */
export class GoWarmPool {
  readonly #spillRate = new Map<string, number>();
  readonly #spills = new Map<string, number>();
  readonly #pressure = new Map<string, number>();

  /** A request found no warm slot (queued, cold-dispatched or refused). */
  recordSpill(model: string): void {
    this.#spills.set(model, (this.#spills.get(model) ?? 0) + 1);
  }

  /** A capacity reject, queue timeout or cold dispatch. */
  recordPressure(model: string): void {
    this.#pressure.set(model, (this.#pressure.get(model) ?? 0) + 1);
  }

  /** One controller tick. */
  plan(view: RegistryView, nowMs: number, o: GoWarmPoolOptions): WarmPoolPlan {
    const tickS = (o.tickMs ?? 10_000) / 1000;
    const models = new Set<string>([...this.#spills.keys(), ...this.#spillRate.keys(), ...this.#pressure.keys()]);
    for (const p of view.providers) for (const s of p.slots) models.add(s.model);
    const targets = new Map<string, { target: number; warm: number }>();
    const load: { providerId: string; model: string }[] = [];
    let pending = view.providers.reduce((n, p) => n + p.pendingLoads.size, 0);
    const used = new Set<string>();
    for (const model of [...models].sort()) {
      const rate = ALPHA * ((this.#spills.get(model) ?? 0) / tickS) + (1 - ALPHA) * (this.#spillRate.get(model) ?? 0);
      this.#spillRate.set(model, rate);
      const holders = view.providers.filter((p) => holdsModel(p, model));
      const capable = view.providers.filter((p) => p.models.some((m) => m.id === model));
      let active = 0;
      for (const p of holders) {
        const slot = p.slots.find((s) => s.model === model);
        active += slot ? slotActiveRequests(p, slot) : 0;
      }
      const ref = holders[0] ?? capable[0];
      const serviceS = ref ? worstCaseServiceTimeMs(soloDecodeTps(ref, undefined), ref.prefillTps) / 1000 : 0.5;
      const L = active + o.queueDepth(model) + rate * serviceS;
      const q = ref
        ? Math.max(
            1,
            slotConcurrencyCap(ref, ref.slots.find((s) => s.model === model) ?? emptySlot(model), {
              ...o.scheduler,
              qualityOvercommit: 1,
            }),
          )
        : FALLBACK_QUALITY_CONCURRENCY;
      let target = L > 0 ? Math.ceil(L / q) + BURST_BUFFER : 0;
      if ((this.#pressure.get(model) ?? 0) >= 1) target += 1;
      target = Math.min(target, capable.length);
      targets.set(model, { target, warm: holders.length });
      const gap = target - holders.length;
      if (gap <= 0) continue;
      let budget = Math.min(gap, Math.max(LOADS_PER_TICK, Math.min(LOADS_PER_TICK_CEILING, Math.ceil(gap * 0.5))));
      for (const p of idleCandidates(view, model, nowMs, used, o)) {
        if (budget <= 0 || pending >= MAX_PENDING_LOADS) break;
        load.push({ providerId: p.id, model });
        used.add(p.id);
        budget--;
        pending++;
      }
    }
    this.#spills.clear();
    this.#pressure.clear();
    return { load, targets };
  }

  /** `kickColdDispatch` on enqueue: one idle provider to load `model` if no load of it is under way. */
  kick(view: RegistryView, model: string, nowMs: number, o: GoWarmPoolOptions): string | undefined {
    if (
      view.providers.some(
        (p) => p.pendingLoads.has(model) || p.slots.some((s) => s.model === model && s.state === "loading"),
      )
    )
      return undefined;
    return idleCandidates(view, model, nowMs, new Set(), o)[0]?.id;
  }
}

/** Idle providers that pass the gates and Go's cold-load gate, fastest first. */
function idleCandidates(
  view: RegistryView,
  model: string,
  nowMs: number,
  used: ReadonlySet<string>,
  o: GoWarmPoolOptions,
): ProviderView[] {
  const probe: RouteRequest = {
    requestId: "warm-pool",
    model,
    traits: { maxTokens: 256, estimatedPromptTokens: 512, hasTools: false, requiresVision: false, stream: false },
    shape: "base",
    exclude: new Set(),
  };
  const out: ProviderView[] = [];
  for (const p of view.providers) {
    if (used.has(p.id) || holdsModel(p, model)) continue;
    if (p.status === "draining" || p.inflight.size > 0 || p.pendingLoads.size > 0) continue;
    if (p.slots.some((s) => s.numRunning + s.numWaiting > 0 || s.state === "loading")) continue;
    if (!checkGates(p, probe, nowMs, o.health, o.scheduler).ok) continue;
    if (o.health.isLoadCooledDown(p.id, model, nowMs)) continue;
    const weights =
      p.models.find((m) => m.id === model)?.sizeBytes || o.catalog.find((m) => m.id === model)?.sizeBytes || 0;
    if (!worstCaseColdAdmits(p, weights, 768)) continue;
    // Never force an unload: a full Mac only swaps out an idle model after the dwell time.
    if (p.slots.length >= Math.max(1, p.maxModelSlots || 1)) {
      const last = o.lastLoadAtMs?.get(p.id);
      if (last !== undefined && nowMs - last < MIN_DWELL_MS) continue;
    }
    out.push(p);
  }
  return out.sort(
    (a, b) =>
      a.slots.length - b.slots.length ||
      soloDecodeTps(b, undefined) - soloDecodeTps(a, undefined) ||
      (a.id < b.id ? -1 : 1),
  );
}
