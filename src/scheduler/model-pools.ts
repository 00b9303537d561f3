/**
 * Model pools: each public provider serves one model pool at a time, so two models never compete for one Mac's
 * GPU, unified memory, KV cache and thermal budget, and one model's failures cannot leak into the other's
 * traffic. A pool key is an alias, or a build no alias names (model-aliases.ts).
 *
 * - The gate is {@link poolGate} (gates.ts), inside the one gate function every routing decision uses:
 *   selection, preflight, queue drain, failover, cold dispatch, warm-pool loads, capacity snapshots.
 * - {@link pickInPools} is {@link pick} with pools: the pool's own members first; then, if they have no room,
 *   a provider of another pool that is safely reassignable (nothing in flight, resident or loading), which the
 *   decision names in `assignPool`; then an idle provider of a pool that keeps another idle loaded member
 *   ({@link spareProviders}; on a Mac with no free model slot its model is evicted for the load); else
 *   `pool_exhausted` when other pools' providers could have taken the request (the HTTP edge answers an
 *   uptime-neutral 429), or an ordinary queue decision when nobody could.
 * - {@link seedPool} picks a provider's pool from its first heartbeat: what it has resident, else the candidate
 *   pool with the most demand per member (never from the order it advertises models in).
 *
 * Pure: no I/O, no clock; the coordinator applies the assignments (src/pool-keeper.ts).
 */
import type { ProviderView, RegistryView } from "../registry/types.js";
import type { ModelAliases } from "../models/model-aliases.js";
import { fnv1a } from "./choose-in-tier.js";
import { advertisersOf, pick, type PickContext } from "./pick.js";
import type { PickResult, RouteRequest } from "./types.js";

/** See the module comment. `req.pools` absent = pools off or bypassed: exactly {@link pick}. */
export function pickInPools(view: RegistryView, req: RouteRequest, ctx: PickContext): PickResult {
  const c = req.pools;
  if (c === undefined) return pick(view, req, ctx);
  const held = pick(view, { ...req, pools: { keys: c.keys, reassign: false } }, ctx);
  if (held.kind === "picked") return held;
  // The request can never be served (unknown model, context): final. A load under way in the pool is not: it
  // is one Mac's worth of capacity, and a burst needs more — an idle, empty Mac is the pool's cold candidate,
  // exactly as it would be without pools (found by `coordinator simulate --scenario two-model-pools`).
  if (held.kind === "reject" && held.code !== "model_unavailable") return held;
  const moved = pick(view, { ...req, pools: { keys: c.keys, reassign: true } }, ctx);
  if (moved.kind === "picked") return withAssignment(view, req.model, c.keys, moved);
  if (held.kind !== "queue") return held;
  // Still full, and no empty provider anywhere: take an idle provider with another model loaded, from a pool that
  // keeps another one like it (the model stays loaded if the Mac has a free model slot, else the load evicts it).
  // Without this, a burst on one model waited, or was refused, while Macs of the other pool sat idle for as long as
  // their model stayed loaded (`simulate --scenario two-model-pools --seed 5 --hours 0.3`: 28 gemma requests
  // refused). The donor always keeps an idle loaded Mac, so its next request is served at once, and a Mac moves
  // only while it serves nothing: a pool reclaims it the same way when its turn comes, never mid-request.
  const spare = spareProviders(view, req.model, c.keys);
  if (spare.size > 0) {
    const reclaimed = pick(view, { ...req, pools: { keys: c.keys, reassign: true, spare } }, ctx);
    if (reclaimed.kind === "picked") return withAssignment(view, req.model, c.keys, reclaimed);
  }
  if (held.reason === "pool_exhausted" || held.reason === "loading") return held;
  // The pool is full. Exhausted if another pool's provider could take the request now: that is the capacity
  // pools keep apart, and the consumer should hear so (429 pool_exhausted) rather than wait on a full pool.
  // A provider with no pool yet does not count: it is seconds from its first heartbeat, worth waiting for.
  // So does a pool still being seeded: while a Mac advertising the model has not heartbeated yet (a coordinator
  // that just started, a fleet reconnecting), the request waits for it rather than hearing "exhausted".
  if (advertisersOf(view, req.model).some((x) => x.pool === undefined && x.privateOnly !== true)) return held;
  const open = pick(view, { ...req, pools: undefined }, ctx);
  if (open.kind !== "picked") return held;
  const taker = advertisersOf(view, req.model).find((x) => x.id === open.providerId);
  return taker?.pool !== undefined
    ? { kind: "queue", reason: "pool_exhausted", retryAfterMs: held.retryAfterMs }
    : held;
}

/** A pick on a reassigning pass: names the pool to move the provider into when it is not one of `keys`. */
function withAssignment(
  view: RegistryView,
  model: string,
  keys: ReadonlySet<string>,
  r: Extract<PickResult, { kind: "picked" }>,
): PickResult {
  const p = advertisersOf(view, model).find((x) => x.id === r.providerId);
  return p?.pool !== undefined && keys.has(p.pool) ? r : { ...r, assignPool: firstKey(keys) };
}

/**
 * A member of another pool than `keys`, ready for its own pool's next request: not draining, not overheating,
 * nothing in flight, no load pending or under way, a model loaded. (An idle member's loaded model is its pool's:
 * pool-keeper reseeds an idle Mac holding only builds outside its pool.) Private Macs have no pool.
 */
function readyElsewhere(p: ProviderView, keys: ReadonlySet<string>): boolean {
  return (
    p.pool !== undefined &&
    !keys.has(p.pool) &&
    p.status !== "draining" &&
    p.thermal !== "critical" &&
    p.inflight.size === 0 &&
    p.pendingLoads.size === 0 &&
    p.slots.every((s) => s.state !== "loading" && s.numRunning + s.numWaiting === 0) &&
    p.slots.some((s) => s.state === "idle" || s.state === "running")
  );
}

/**
 * Providers of pools other than `keys` that advertise `model` and may be taken for it although a model is
 * loaded: ready ({@link readyElsewhere}), in a pool in which another member is ready too, so the pool keeps one.
 * Only called once a request's pool is full; scans the fleet only when an advertiser is a candidate.
 */
export function spareProviders(view: RegistryView, model: string, keys: ReadonlySet<string>): Set<string> {
  const candidates = advertisersOf(view, model).filter((p) => readyElsewhere(p, keys));
  const out = new Set<string>();
  if (candidates.length === 0) return out;
  const pools = new Set(candidates.map((p) => p.pool!));
  const readyByPool = new Map<string, number>();
  for (const p of view.providers)
    if (p.pool !== undefined && pools.has(p.pool) && readyElsewhere(p, keys))
      readyByPool.set(p.pool, (readyByPool.get(p.pool) ?? 0) + 1);
  // Each pick recounts, so a burst takes a pool's ready Macs one by one down to the last, never that one.
  for (const p of candidates) if ((readyByPool.get(p.pool!) ?? 0) >= 2) out.add(p.id);
  return out;
}

/** The pool constraint of a request for `model` (an alias or a build), first pass. */
export function poolsFor(aliases: ModelAliases, model: string): { keys: ReadonlySet<string>; reassign: false } {
  return { keys: aliases.resolve(model).pools, reassign: false };
}

function firstKey(keys: ReadonlySet<string>): string {
  let first: string | undefined;
  for (const k of keys) if (first === undefined || k < first) first = k;
  return first!;
}

/** Demand every pool is credited with, so that with no traffic yet providers spread evenly (req/s). */
const PRIOR_DEMAND_PER_S = 0.001;

/** Demand and membership of each pool, as the seeding rule weighs them. */
export interface PoolLoad {
  /** Requests per second arriving for the pool's builds (0 when unknown). */
  demandPerS(pool: string): number;
  /** Providers currently assigned to the pool. */
  members(pool: string): number;
}

/** Builds a provider holds or is getting: loaded or loading slots, reported warm models, loads pending. */
export function residentBuilds(p: ProviderView): string[] {
  const out = new Set<string>();
  for (const s of p.slots) if (s.state !== "crashed") out.add(s.model);
  for (const m of p.warmModels) out.add(m);
  for (const m of p.pendingLoads.keys()) out.add(m);
  return [...out];
}

/** Every pool the provider could serve: the pool keys of its advertised builds. */
export function candidatePools(p: ProviderView, aliases: ModelAliases): Set<string> {
  const out = new Set<string>();
  for (const m of p.models) for (const k of aliases.poolsOfBuild(m.id)) out.add(k);
  return out;
}

/**
 * The pool a provider should serve, from what it reports (call only once it has heartbeated): the pools of
 * its resident builds if it has any (a reconnecting Mac keeps serving what it has loaded), else every pool its
 * builds belong to (so two builds of one alias seed one pool); among those, the most demand per member
 * (members + 1: this provider joining), and between equals a per-provider hash, so identical idle Macs spread
 * over their pools instead of all taking the alphabetically first. Undefined when it advertises nothing.
 */
export function seedPool(p: ProviderView, aliases: ModelAliases, load: PoolLoad): string | undefined {
  const candidates = candidatePools(p, aliases);
  const resident = new Set<string>();
  for (const b of residentBuilds(p)) for (const k of aliases.poolsOfBuild(b)) if (candidates.has(k)) resident.add(k);
  const choices = resident.size > 0 ? resident : candidates;
  let best: string | undefined;
  let bestScore = -1;
  let bestTie = -1;
  for (const pool of choices) {
    // The small prior makes "fewer members" decide when no pool has demand yet.
    const score = (load.demandPerS(pool) + PRIOR_DEMAND_PER_S) / (load.members(pool) + 1);
    const tie = fnv1a(`${p.id}\u0000${pool}`);
    if (score > bestScore + 1e-12 || (Math.abs(score - bestScore) <= 1e-12 && tie > bestTie)) {
      best = pool;
      bestScore = score;
      bestTie = tie;
    }
  }
  return best;
}

/**
 * Whether a provider's assignment should be (re)computed: it has heartbeated and has no pool; or its pool is no
 * longer one of its candidates (its alias was removed or repointed: the provider is released); or, idle, it
 * holds builds of which none serves its pool. The last happens to a Mac that starts loading its own models just
 * after its first heartbeat (seeded then with nothing resident): left alone it would hold memory for a model its
 * pool never routes to. The coordinator itself never causes it (its loads and reassignments stay in the pool),
 * and the reseed goes by residency, so it settles at once. A private machine is never pooled.
 */
export function needsSeeding(p: ProviderView, aliases: ModelAliases): boolean {
  if ((p.heartbeats ?? 0) === 0 || p.privateOnly === true) return false;
  if (p.pool === undefined) return true;
  if (!candidatePools(p, aliases).has(p.pool)) return true;
  const held = residentBuilds(p);
  return held.length > 0 && p.inflight.size === 0 && !held.some((b) => aliases.poolsOfBuild(b).has(p.pool!));
}

/** One pool's state, for the per-pool gauges (telemetry/fleet-gauges.ts). */
export interface PoolRow {
  pool: string;
  /** Providers assigned to the pool. */
  assigned: number;
  /** Members holding one of the pool's builds loaded (running or idle slot). */
  warm: number;
  /** Members with a request in flight. */
  serving: number;
  activeRequests: number;
  /** KV token budget of the members' slots for the pool's builds. */
  tokenBudgetRemaining: number;
  tokenBudgetTotal: number;
  /** Decode rate the members' running slots of the pool's builds report, tokens/s. */
  decodeTps: number;
}

/** Per-pool rows, sorted by pool key, over the providers that have a pool. */
export function poolRows(view: RegistryView, aliases: ModelAliases): PoolRow[] {
  const rows = new Map<string, PoolRow>();
  for (const p of view.providers) {
    if (p.pool === undefined) continue;
    let r = rows.get(p.pool);
    if (!r)
      rows.set(
        p.pool,
        (r = {
          pool: p.pool,
          assigned: 0,
          warm: 0,
          serving: 0,
          activeRequests: 0,
          tokenBudgetRemaining: 0,
          tokenBudgetTotal: 0,
          decodeTps: 0,
        }),
      );
    r.assigned++;
    const builds = new Set(aliases.buildsOfPool(p.pool));
    const slots = p.slots.filter((s) => builds.has(s.model) && (s.state === "running" || s.state === "idle"));
    if (slots.length > 0) r.warm++;
    if (p.inflight.size > 0) r.serving++;
    r.activeRequests += p.inflight.size;
    for (const s of slots) {
      r.tokenBudgetTotal += s.tokenBudgetMax;
      r.tokenBudgetRemaining += Math.max(0, s.tokenBudgetMax - s.tokenBudgetUsed);
      if (s.state === "running") r.decodeTps += s.observedDecodeTps;
    }
  }
  return [...rows.values()].sort((a, b) => (a.pool < b.pool ? -1 : a.pool > b.pool ? 1 : 0));
}
