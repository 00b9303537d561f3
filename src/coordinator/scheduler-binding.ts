/**
 * One scheduler binding for preflight, selection and every failover, so their gates cannot drift: the pure
 * pick (scheduler/model-pools.ts) over the registry's snapshot, with the clock, health and options bound in.
 */
import type { HealthTracker } from "../health/health-tracker.js";
import type { Preflight } from "../http/inference-route.js";
import type { AliasBook } from "../models/model-aliases.js";
import type { CatalogEntry } from "../models/catalog.js";
import type { PoolKeeper } from "../pool-keeper.js";
import type { ProviderRegistry } from "../registry/provider-registry.js";
import { pickInPools } from "../scheduler/model-pools.js";
import { pick } from "../scheduler/pick.js";
import type { ProviderId } from "../registry/types.js";
import type { SchedulerOptions } from "../scheduler/scheduler-options.js";
import type { PickResult, RouteRequest } from "../scheduler/types.js";
import type { Clock } from "../util/clock.js";
import type { OutputEstimator } from "../util/output-estimator.js";

/** What the binding reads on every pick. */
export interface SchedulerBindingDeps {
  registry: ProviderRegistry;
  health: HealthTracker;
  estimator: OutputEstimator;
  catalog: readonly CatalogEntry[];
  options: Readonly<SchedulerOptions>;
  clock: Clock;
  random: () => number;
  pools: PoolKeeper;
  aliases: AliasBook;
  /** The Retry-After a queued request for `model` would be told, in ms (the dispatcher's queue). */
  queueRetryAfterMs: (model: string) => number;
}

/** The two ways the coordinator asks the scheduler. */
export interface SchedulerBinding {
  /** For dispatch (first pick, queue drain, failover, backups): carries out a pool reassignment it decides. */
  dispatchRoute(req: RouteRequest): PickResult;
  /** For preflight on a public model name: only looks. */
  preflightRoute(req: RouteRequest): Preflight;
  /**
   * Cluster mode, at the coordinator that owns the Mac's stream: would this Mac take the request now? The same
   * pick, over this one Mac, with the owner's own accounting, so a node that chose it from a stale mirror gets
   * an explicit no (and tries its next candidate) instead of a double booking. Pools are the requesting node's
   * business and are not re-checked.
   */
  ownerRoute(providerId: ProviderId, req: RouteRequest): PickResult;
}

/** Binds the scheduler to the coordinator's state. */
export function bindScheduler(deps: SchedulerBindingDeps): SchedulerBinding {
  const { registry, health, clock, pools, aliases } = deps;
  const context = (req: RouteRequest) => ({
    nowMs: clock.nowMs(),
    random: deps.random,
    health,
    estimator: deps.estimator,
    catalog: deps.catalog,
    options: deps.options,
    retryAfterMs: deps.queueRetryAfterMs(req.model),
  });
  // The provider health breaker fails open: if it alone would leave no route, breaker-open providers are retried.
  const route = (req: RouteRequest): PickResult => {
    const ctx = context(req);
    const d = pickInPools(registry.view(), req, ctx);
    if (d.kind === "reject" && d.code === "model_unavailable")
      return pickInPools(registry.view(), req, { ...ctx, health: health.withoutBreaker() });
    return d;
  };
  return {
    ownerRoute: (providerId, req) => {
      const rec = registry.get(providerId);
      if (!rec) return { kind: "reject", code: "model_unavailable", message: "not connected here" };
      return pick({ providers: [rec] }, req, context(req));
    },
    // Dispatch carries out a reassignment in the same synchronous step as the dispatch it precedes.
    dispatchRoute: (req) => {
      const d = route(req);
      if (d.kind === "picked" && d.assignPool !== undefined) pools.reassign(d.providerId, d.assignPool);
      return d;
    },
    /**
     * The alias's desired build, else its previous build when only that one can take the request now (a
     * rollout never sheds while the old build has room), else the desired build's verdict (queue,
     * pool_exhausted, reject). The caller's constraints (`req.pinnedAccountId`, `allowedSerials`,
     * `callerAccountId`) ride along to every pick.
     */
    preflightRoute: (req) => {
      const resolved = aliases.current.resolve(req.model);
      // A request routed by its caller (self, provider_serials) bypasses the public pools.
      const poolKeys =
        req.pinnedAccountId !== undefined || req.allowedSerials !== undefined ? undefined : pools.poolsOf(req.model);
      let first: Preflight | undefined;
      for (const build of resolved.builds) {
        const decision = route({
          ...req,
          model: build,
          ...(poolKeys !== undefined ? { pools: { keys: poolKeys, reassign: false } } : {}),
        });
        const p: Preflight = { build, decision, ...(poolKeys !== undefined ? { pools: poolKeys } : {}) };
        if (decision.kind === "picked") return p;
        first ??= p;
      }
      return first!;
    },
  };
}
