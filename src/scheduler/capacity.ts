/**
 * The per-model capacity summary behind the public `GET /v1/models/capacity` (cheap; the HTTP edge caches it
 * for ~2 s). Pure: a snapshot, queue depths and the catalog in, plain JSON-ready data out.
 */
import type { ProviderView, RegistryView } from "../registry/types.js";
import { slotActiveRequests, slotCommittedTokens, slotConcurrencyCap, slotTokenBudgetMax, soloDecodeTps } from "./admission.js";
import { loadTimeMs, perStreamTps, prefillTpsOf } from "./cost.js";
import { weightsBytesFor, type SchedulerCatalogModel } from "./pick.js";
import { resolveSchedulerOptions, type SchedulerOptions } from "./scheduler-options.js";

/** One model's row (snake_case: it is serialised as is). */
export interface ModelCapacity {
  id: string;
  /** Providers that are connected, not draining, not overheating, and advertise the model. */
  routable_providers: number;
  /** Routable providers with the model loaded (running or idle). */
  warm_providers: number;
  /** Routable providers that would need a load. */
  cold_providers: number;
  active_requests: number;
  queued_requests: number;
  queue_limit: number;
  /** Sum over warm providers of the current aggregate decode rate, tok/s. */
  aggregate_tps: number;
  /** Expected time to first token for a 512-token prompt on the best warm provider (else best cold), ms; null if none. */
  estimated_ttft_ms: number | null;
  token_budget_remaining: number;
  token_budget_total: number;
}

export interface CapacitySnapshot {
  models: ModelCapacity[];
}

const PROBE_PROMPT_TOKENS = 512;

/** Builds the summary for every catalog model plus any model a connected provider advertises. */
export function capacitySnapshot(
  view: RegistryView,
  queueDepths: ReadonlyMap<string, number>,
  catalog: readonly SchedulerCatalogModel[],
  _nowMs: number,
  options: {
    queueLimit?: number;
    scheduler?: Readonly<SchedulerOptions>;
    /** Under model pools: the pools whose members may serve a model (undefined = pools off); others do not count. */
    poolsOf?(model: string): ReadonlySet<string> | undefined;
  } = {},
): CapacitySnapshot {
  const o = options.scheduler ?? resolveSchedulerOptions();
  const ids = new Set<string>(catalog.map((m) => m.id));
  for (const p of view.providers) for (const m of p.models) ids.add(m.id);
  const models: ModelCapacity[] = [];
  for (const id of [...ids].sort()) models.push(modelRow(view, id, queueDepths.get(id) ?? 0, catalog, options.queueLimit ?? 10, o, options.poolsOf?.(id)));
  return { models };
}

function routable(p: ProviderView, model: string): boolean {
  return p.status !== "draining" && p.thermal !== "critical" && p.models.some((m) => m.id === model && m.templateRenderOk !== false);
}

function modelRow(
  view: RegistryView,
  id: string,
  queued: number,
  catalog: readonly SchedulerCatalogModel[],
  queueLimit: number,
  o: Readonly<SchedulerOptions>,
  pools: ReadonlySet<string> | undefined,
): ModelCapacity {
  const row: ModelCapacity = {
    id,
    routable_providers: 0,
    warm_providers: 0,
    cold_providers: 0,
    active_requests: 0,
    queued_requests: queued,
    queue_limit: queueLimit,
    aggregate_tps: 0,
    estimated_ttft_ms: null,
    token_budget_remaining: 0,
    token_budget_total: 0,
  };
  let bestWarm = Infinity;
  let bestCold = Infinity;
  const kvFallback = catalog.find((m) => m.id === id)?.kvBytesPerToken;
  for (const p of view.providers) {
    if (!routable(p, id)) continue;
    // The public capacity: a private machine serves only its owner.
    if (p.privateOnly === true) continue;
    if (pools !== undefined && (p.pool === undefined || !pools.has(p.pool))) continue;
    row.routable_providers++;
    const weightsOf = weightsBytesFor(p, catalog);
    const slot = p.slots.find((s) => s.model === id && (s.state === "running" || s.state === "idle"));
    if (!slot) {
      row.cold_providers++;
      bestCold = Math.min(bestCold, loadTimeMs(p, id, weightsOf(id), o) + (PROBE_PROMPT_TOKENS / prefillTpsOf(p, undefined, o, id)) * 1000);
      continue;
    }
    row.warm_providers++;
    const active = slotActiveRequests(p, slot);
    row.active_requests += active;
    const solo = soloDecodeTps(p, slot);
    row.aggregate_tps += active > 0 ? perStreamTps(solo, active, o.concurrencyLawK) * active : 0;
    const max = slotTokenBudgetMax(p, slot, weightsOf, kvFallback, o) ?? 0;
    row.token_budget_total += max;
    row.token_budget_remaining += Math.max(0, max - slotCommittedTokens(p, slot, o.overrunMarginTokens));
    if (active < slotConcurrencyCap(p, slot, o)) bestWarm = Math.min(bestWarm, (PROBE_PROMPT_TOKENS / prefillTpsOf(p, slot, o)) * 1000);
  }
  const best = Number.isFinite(bestWarm) ? bestWarm : bestCold;
  row.estimated_ttft_ms = Number.isFinite(best) ? Math.round(best) : null;
  row.aggregate_tps = Math.round(row.aggregate_tps * 10) / 10;
  return row;
}
