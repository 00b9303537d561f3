/**
 * What the REST routes are served from: the inference path (auth, limits, preflight with demand accounting,
 * dispatch) and the status and account routes (capacity, health, readiness, usage, owned providers).
 */
import type { Config } from "../config/config.js";
import type { Dispatcher } from "../dispatch/dispatcher.js";
import { AuthFailureThrottle } from "../http/auth-failure-throttle.js";
import { BodyBudget } from "../http/body-budget.js";
import type { Preflight } from "../http/inference-route.js";
import { requestLimitsFrom } from "../http/request-limits.js";
import { UsageQueryGate } from "../http/usage-query-gate.js";
import type { Readiness, RouteDeps } from "../http/routes.js";
import type { PostgresLedger } from "../ledger/postgres-ledger.js";
import type { ProviderIdentityStore } from "../ledger/provider-identities.js";
import type { ModelDirectory } from "../models/model-directory.js";
import type { ProviderService } from "../protocol/provider-service.js";
import type { KeyedRateLimiter } from "../ratelimit/limiter.js";
import type { ProviderRegistry } from "../registry/provider-registry.js";
import type { ProviderView } from "../registry/types.js";
import type { DemandTracker } from "../scheduler/demand-tracker.js";
import type { ProviderVerdict } from "../scheduler/provider-verdict.js";
import type { RouteRequest } from "../scheduler/types.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";
import type { OutputEstimator } from "../util/output-estimator.js";
import type { FleetStatus } from "../cluster/fleet.js";
import type { MigrationWatch } from "./migration-watch.js";

/** Everything the routes read, as the composition root built it. */
export interface RouteDepsInput {
  config: Config;
  version: string;
  clock: Clock;
  log: Logger;
  ledger: PostgresLedger;
  limiter: KeyedRateLimiter;
  dispatcher: Dispatcher;
  registry: ProviderRegistry;
  providers: ProviderService;
  identities: ProviderIdentityStore;
  models: ModelDirectory;
  estimator: OutputEstimator;
  demand: DemandTracker;
  migrations: MigrationWatch;
  /** The scheduler binding's preflight (scheduler-binding.ts). */
  preflightRoute: (req: RouteRequest) => Preflight;
  /** The public capacity snapshot at `nowMs` (scheduler/capacity.ts). */
  fleetSnapshot: (nowMs: number) => unknown;
  verdictOf: (rec: ProviderView | undefined, fenceReason: string | null) => ProviderVerdict;
  /** Whether the consumer server is draining; read per request, after start-up. */
  draining: () => boolean;
  /** This node's place in the cluster, if any (cluster/fleet.ts). */
  fleetStatus: () => FleetStatus;
}

/** Builds the REST routes' dependencies. */
export function buildRouteDeps(i: RouteDepsInput): RouteDeps {
  const { config, clock, log, ledger } = i;
  const usageQueries = new UsageQueryGate<Awaited<ReturnType<PostgresLedger["usage"]>>>();
  return {
    accounts: ledger.accounts,
    authFailures: new AuthFailureThrottle({
      burst: config.authFailureBurst,
      refillPerSec: config.authFailureRefillPerS,
      maxAddresses: config.authFailureMaxAddresses,
    }),
    trustedProxyHops: config.trustedProxyHops,
    ledger: ledger.ledger,
    limiter: i.limiter,
    dispatcher: i.dispatcher,
    clock,
    preflight: preflightWithDemand(i),
    models: i.models,
    onFinished: (model, usage, maxTokens, durationMs) => {
      i.estimator.observe(model, usage.completionTokens, maxTokens);
      i.demand.recordCompletion(model, durationMs, clock.nowMs());
    },
    maxBodyBytes: config.maxBodyBytes,
    bodyBudget: new BodyBudget(config.maxInflightBodyBytes),
    limits: requestLimitsFrom(config),
    ...(config.corsAllowOrigin === "off" ? {} : { corsAllowOrigin: config.corsAllowOrigin }),
    log: (msg, fields) => log.warn(msg, fields),
    logger: log,
    capacity: capacityRoute(i),
    health: healthRoute(i),
    readiness: () => readiness(i),
    ownedProviders: ownedProvidersRoute(i),
    forgetOwnedProvider: async (accountId, serial) => {
      if (!(await i.identities.forget(serial, accountId))) return false;
      i.providers.disconnectSerial(serial, "provider identity forgotten by its owner");
      log.info("provider identity forgotten", { serial, account_id: accountId });
      return true;
    },
    usage: async (accountId, sinceMs) => {
      // No since_ms is since 0: the same query, so the same call for the gate.
      const since = sinceMs ?? 0;
      const u = await usageQueries.run(accountId, since, () => ledger.usage(accountId, since));
      return {
        object: "usage",
        account_id: accountId,
        requests: u.requests,
        prompt_tokens: u.promptTokens,
        completion_tokens: u.completionTokens,
        spent_micro_usd: Number(u.spentMicroUsd),
        earned_micro_usd: Number(u.earnedMicroUsd),
      };
    },
  };
}

/** Preflight, recording public demand for the warm-pool planner on the way. */
function preflightWithDemand({ preflightRoute, demand, clock }: RouteDepsInput): RouteDeps["preflight"] {
  return (req) => {
    const p = preflightRoute(req);
    // Public demand only: a request for the caller's own machines says nothing about what the pools need.
    if (req.pinnedAccountId !== undefined) return p;
    demand.recordArrival(p.build, clock.nowMs());
    // No room anywhere right now (the request will queue): capacity pressure for the warm-pool planner.
    if (p.decision.kind === "queue") demand.recordRejection(p.build, clock.nowMs());
    return p;
  };
}

/** The public capacity snapshot, rebuilt at most every 2 s. */
function capacityRoute({ clock, draining, fleetSnapshot }: RouteDepsInput): RouteDeps["capacity"] {
  let cache: { atMs: number; body: unknown } | undefined;
  return () => {
    const now = clock.nowMs();
    // Like the Go coordinator: a draining process advertises no capacity, so routers send work elsewhere.
    if (draining()) return { models: [], draining: true };
    if (!cache || now - cache.atMs > 2_000) cache = { atMs: now, body: fleetSnapshot(now) };
    return cache.body;
  };
}

function healthRoute(i: RouteDepsInput): RouteDeps["health"] {
  const { clock, draining, version, registry, dispatcher, ledger, fleetStatus } = i;
  const startedAtMs = clock.nowMs();
  return () => {
    const fleet = fleetStatus();
    return {
      status: draining() ? "draining" : "ok",
      version,
      uptime_s: Math.round((clock.nowMs() - startedAtMs) / 1000),
      // Macs whose streams are on this process (in a cluster the registry also mirrors the others' Macs).
      providers_connected: fleet.mode === "cluster" ? fleet.owned : registry.size,
      requests_in_flight: dispatcher.inflight,
      ledger: ledger.status(),
      ...(fleet.mode === "cluster"
        ? {
            cluster: {
              node: fleet.node,
              peers: fleet.peers,
              providers_mirrored: fleet.mirrored,
              nats_connected: fleet.connected,
            },
          }
        : {}),
    };
  };
}

/** What /readyz answers; a probe on a schema still migrating also re-reads it (migration-watch.ts). */
function readiness({ migrations, ledger, draining }: RouteDepsInput): Readiness {
  migrations.poll();
  const current = migrations.current;
  const degraded = ledger.status().degraded;
  const isDraining = draining();
  return {
    ready: current && !degraded && !isDraining,
    checks: {
      migrations: current ? "ok" : "pending",
      ledger: degraded ? "degraded" : "ok",
      serving: isDraining ? "draining" : "ok",
    },
  };
}

function ownedProvidersRoute({ identities, registry, verdictOf }: RouteDepsInput): RouteDeps["ownedProviders"] {
  return async (accountId) =>
    (await identities.listByAccount(accountId)).map((id) => {
      const rec = registry.get(id.providerId);
      const v = verdictOf(rec, id.fenceReason);
      return {
        object: "provider",
        id: id.providerId,
        provider_id: id.providerId,
        serial: id.serial,
        state: v.state,
        pool: rec?.pool ?? null,
        private_only: rec?.privateOnly ?? false,
        models: rec ? rec.models.map((m) => m.id) : [],
        routable: v.routable,
        reason: v.reason,
        connected: rec !== undefined,
        fenced: id.fenceReason !== null,
        ...(id.fenceReason !== null ? { fence_reason: id.fenceReason } : {}),
      };
    });
}
