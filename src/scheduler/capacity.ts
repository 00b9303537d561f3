/**
 * The per-model capacity summary behind the public `GET /v1/models/capacity` (cheap; the HTTP edge caches it
 * for ~2 s). Pure: a snapshot, queue depths and the catalog in, plain JSON-ready data out.
 */
import type { ProviderView, RegistryView } from "../registry/types.js";
import {
  slotActiveRequests,
  slotCommittedTokens,
  slotConcurrencyCap,
  slotTokenBudgetMax,
  soloDecodeTps,
} from "./admission.js";
import { loadTimeMs, perStreamTps, prefillTpsOf } from "./cost.js";
import { weightsBytesFor, type SchedulerCatalogModel } from "./pick.js";
import type { ModelAliases } from "../models/model-aliases.js";
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

/**
 * Builds the summary for every model a consumer can ask for: catalog models and models a connected provider
 * advertises, less the builds behind an alias, plus each alias — its row summing its builds (desired and
 * previous) over its pool's members, each Mac once, the way routing sees the alias.
 */
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
    /** Public names → builds (default: none). */
    aliases?: ModelAliases;
  } = {},
): CapacitySnapshot {
  const o = options.scheduler ?? resolveSchedulerOptions();
  const aliases = options.aliases;
  const ids = new Set<string>(catalog.map((m) => m.id));
  for (const p of view.providers) for (const m of p.models) ids.add(m.id);
  if (aliases) {
    for (const id of ids) if (aliases.isAliased(id)) ids.delete(id);
    for (const a of aliases.list()) ids.add(a.alias);
  }
  const models: ModelCapacity[] = [];
  for (const id of [...ids].sort()) {
    const builds = aliases?.resolve(id).builds ?? [id];
    const queued = builds.reduce((n, b) => n + (queueDepths.get(b) ?? 0), 0);
    models.push(modelRow(view, id, builds, queued, catalog, options.queueLimit ?? 10, o, options.poolsOf?.(id)));
  }
  return { models };
}

/** The first of `builds` (in order) the provider can serve, if it is routable at all. */
function routableBuild(p: ProviderView, builds: readonly string[]): string | undefined {
  if (p.status === "draining" || p.thermal === "critical") return undefined;
  return builds.find((b) => p.models.some((m) => m.id === b && m.templateRenderOk !== false));
}

function modelRow(
  view: RegistryView,
  id: string,
  builds: readonly string[],
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
  for (const p of view.providers) {
    // The public capacity: a private machine serves only its owner.
    if (p.privateOnly === true) continue;
    // A Mac holding one of the builds loaded counts warm for it; else it would load the first it can serve.
    const warmSlot = p.slots.find((s) => builds.includes(s.model) && (s.state === "running" || s.state === "idle"));
    const build =
      warmSlot !== undefined && routableBuild(p, [warmSlot.model]) !== undefined
        ? warmSlot.model
        : routableBuild(p, builds);
    if (build === undefined) continue;
    const kvFallback = catalog.find((m) => m.id === build)?.kvBytesPerToken;
    if (pools !== undefined && (p.pool === undefined || !pools.has(p.pool))) continue;
    row.routable_providers++;
    const weightsOf = weightsBytesFor(p, catalog);
    const slot = warmSlot?.model === build ? warmSlot : undefined;
    if (!slot) {
      row.cold_providers++;
      bestCold = Math.min(
        bestCold,
        loadTimeMs(p, build, weightsOf(build), o) + (PROBE_PROMPT_TOKENS / prefillTpsOf(p, undefined, o, build)) * 1000,
      );
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
    if (active < slotConcurrencyCap(p, slot, o))
      bestWarm = Math.min(bestWarm, (PROBE_PROMPT_TOKENS / prefillTpsOf(p, slot, o)) * 1000);
  }
  const best = Number.isFinite(bestWarm) ? bestWarm : bestCold;
  row.estimated_ttft_ms = Number.isFinite(best) ? Math.round(best) : null;
  row.aggregate_tps = Math.round(row.aggregate_tps * 10) / 10;
  return row;
}
