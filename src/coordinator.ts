/**
 * The composition root: builds the registry, health tracker, scheduler binding, dispatcher, ledger, rate
 * limiter and both servers from a Config and an open database, and tears them down in order. Each step lives
 * in src/coordinator/, named after what it builds; this file only says in which order, and what each reads.
 */
import type { Kysely } from "kysely";
import { defaultCatalog, type CatalogEntry } from "./models/catalog.js";
import type { Config } from "./config/config.js";
import type { Dispatcher } from "./dispatch/dispatcher.js";
import { HealthTracker } from "./health/health-tracker.js";
import type { PostgresLedger } from "./ledger/postgres-ledger.js";
import type { Database } from "./ledger/schema.js";
import { createProviderIdentityStore } from "./ledger/provider-identities.js";
import { ModelDirectory } from "./models/model-directory.js";
import type { AliasBook } from "./models/model-aliases.js";
import { PoolKeeper } from "./pool-keeper.js";
import type { ProviderService } from "./protocol/provider-service.js";
import type { RateLimiterOptions } from "./ratelimit/limiter.js";
import { ProviderRegistry } from "./registry/provider-registry.js";
import type { ProviderView } from "./registry/types.js";
import { capacitySnapshot } from "./scheduler/capacity.js";
import { DemandTracker } from "./scheduler/demand-tracker.js";
import { providerVerdict } from "./scheduler/provider-verdict.js";
import { resolveSchedulerOptions } from "./scheduler/scheduler-options.js";
import { DivergenceTracker } from "./usage/divergence-tracker.js";
import { systemClock, type Clock } from "./util/clock.js";
import { createLogger, type Logger } from "./util/logger.js";
import { openFileLimit } from "./util/open-file-limit.js";
import { OutputEstimator } from "./util/output-estimator.js";
import { adminServiceDeps } from "./coordinator/admin-service-deps.js";
import { startAliasSync } from "./coordinator/alias-sync.js";
import { startBackgroundLoops } from "./coordinator/background-loops.js";
import { createConsumerHttp } from "./coordinator/consumer-http.js";
import { createDispatcher } from "./coordinator/create-dispatcher.js";
import { createProcessRateLimiter } from "./coordinator/create-rate-limiter.js";
import { createProviderService } from "./coordinator/create-provider-service.js";
import { watchMigrations } from "./coordinator/migration-watch.js";
import { buildRouteDeps } from "./coordinator/route-deps.js";
import { bindScheduler } from "./coordinator/scheduler-binding.js";
import { shutdownOf, type DrainResult } from "./coordinator/shutdown.js";
import { startLedger } from "./coordinator/start-ledger.js";
import { startFleet } from "./coordinator/start-fleet.js";
import type { Fleet } from "./cluster/fleet.js";
import { startServers } from "./coordinator/start-servers.js";

export type { DrainResult };

export interface CoordinatorDeps {
  db: Kysely<Database>;
  clock?: Clock;
  random?: () => number;
  catalog?: readonly CatalogEntry[];
  logger?: Logger;
  /** Per-tier rate-limit overrides (tests use small limits to reach them quickly). Default: the tier defaults. */
  rateLimitTiers?: RateLimiterOptions["tiers"];
  /** The process's open-file limit, for the start-up check of the connection bounds. Default: read from the OS. */
  openFileLimit?: number;
}

export interface Coordinator {
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly registry: ProviderRegistry;
  readonly dispatcher: Dispatcher;
  readonly health: HealthTracker;
  readonly ledger: PostgresLedger;
  readonly providers: ProviderService;
  /** The Macs this coordinator routes over: its own, or the cluster's (`CLUSTER`). */
  readonly fleet: Fleet;
  /** Public model names → builds, loaded at start and replaced at once by the admin alias RPCs served here. */
  readonly aliases: AliasBook;
  /**
   * Graceful shutdown, first half: reports "draining" (503 on /health and /readyz, NOT_SERVING on gRPC health, no
   * capacity on /v1/models/capacity), asks
   * keep-alive clients to reconnect elsewhere, and waits until every HTTP request in progress has finished (its
   * ledger settlement included) or `graceMs` has passed. Requests that still arrive are served, since the
   * providers are still here. Call close() afterwards.
   */
  drain(graceMs: number): Promise<DrainResult>;
  /** Stops accepting work, closes provider streams and servers, flushes the ledger. Does not close `db`. */
  close(): Promise<void>;
}

export const coordinatorVersion = "0.1.0";

export async function startCoordinator(config: Config, deps: CoordinatorDeps): Promise<Coordinator> {
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? Math.random;
  const catalog = deps.catalog ?? defaultCatalog;
  const log = deps.logger ?? createLogger(config.logLevel);
  const registry = new ProviderRegistry({ catalog });
  const health = new HealthTracker();
  const estimator = new OutputEstimator();
  const demand = new DemandTracker();
  const schedulerOptions = resolveSchedulerOptions({
    toolsVersionFloor: config.toolsVersionFloor,
    toolsFloorWaivedByNormalization: config.toolsFloorWaived,
    forwardMarginFraction: config.clusterForwardMargin,
  });

  // The alias table may be one of the migrations this replica waited for: read it once they have run.
  const migrations = await watchMigrations(deps.db, () =>
    aliasSync.refresh().catch((e) => log.warn("model aliases not loaded", { error: String(e) })),
  );
  const ledger = await startLedger(config, { db: deps.db, clock, catalog, log });
  const rateLimits = createProcessRateLimiter(config, { db: deps.db, clock, log, tiers: deps.rateLimitTiers });
  const limiter = rateLimits.limiter;
  const identities = createProviderIdentityStore(deps.db);
  const aliasSync = await startAliasSync({
    db: deps.db,
    refreshMs: config.modelAliasRefreshMs,
    schemaCurrent: () => migrations.current,
    log,
  });
  const aliases = aliasSync.book;
  const pools = new PoolKeeper({ enabled: config.modelPools, registry, aliases, demand, clock, log });
  const usageDivergence = new DivergenceTracker();
  // Sessions start only once the servers listen, after `fleet` is assigned below.
  let fleet: Fleet | undefined;
  const providers = createProviderService(config, {
    registry,
    clock,
    health,
    ledger,
    identities,
    usageDivergence,
    log,
    sessions: {
      connected: (rec) => fleet?.connected(rec),
      disconnected: (rec) => fleet?.disconnected(rec),
      endRemote: (id, reason) => fleet?.endRemote(id, reason),
    },
  });

  // The binding reads the dispatcher's queue, and the dispatcher picks through the binding: `dispatcher` is
  // assigned before any pick can run.
  let dispatcher: Dispatcher;
  const scheduler = bindScheduler({
    registry,
    health,
    estimator,
    catalog,
    options: schedulerOptions,
    clock,
    random,
    pools,
    aliases,
    queueRetryAfterMs: (model) => dispatcher.queue.retryAfterS(model) * 1000,
  });
  fleet = await startFleet(config, { registry, providers, scheduler, clock, log });
  dispatcher = createDispatcher(config, {
    registry,
    providers,
    directory: fleet,
    clock,
    health,
    pick: scheduler.dispatchRoute,
    usageDivergence,
    log,
  });

  const fleetSnapshot = (nowMs: number) =>
    capacitySnapshot(registry.view(), dispatcher.queue.depths(), catalog, nowMs, {
      queueLimit: dispatcher.queue.limit,
      scheduler: schedulerOptions,
      poolsOf: (m) => pools.poolsOf(m),
      aliases: aliases.current,
    });
  const verdictOf = (rec: ProviderView | undefined, fenceReason: string | null) =>
    providerVerdict({
      provider: rec,
      fenceReason,
      nowMs: clock.nowMs(),
      health,
      options: schedulerOptions,
      poolsOn: pools.enabled,
    });
  const models = new ModelDirectory(catalog, registry, () => aliases.current);
  // `draining` reads `consumer` (assigned just below): routes run per request, after start-up, never before.
  const routeDeps = buildRouteDeps({
    config,
    version: coordinatorVersion,
    clock,
    log,
    ledger,
    limiter,
    dispatcher,
    registry,
    providers,
    identities,
    models,
    estimator,
    demand,
    migrations,
    preflightRoute: scheduler.preflightRoute,
    fleetSnapshot,
    verdictOf,
    draining: () => consumer.server.draining,
    fleetStatus: () => fleet.status(),
  });
  const admin = adminServiceDeps({
    ledger,
    registry,
    providers,
    identities,
    aliasSync,
    limiter,
    usageDivergence,
    verdictOf,
    clock,
    log,
  });
  const consumer = createConsumerHttp(config, clock, routeDeps, admin);
  const { httpPort, grpc } = await startServers(
    config,
    { consumer, providers, ledger, aliasSync, log },
    deps.openFileLimit ?? openFileLimit(),
  );

  const loops = startBackgroundLoops(config, {
    registry,
    providers,
    clock,
    demand,
    health,
    catalog,
    schedulerOptions,
    pools,
    aliases,
    fleetSnapshot,
    log,
  });
  log.info("coordinator listening", { http_port: httpPort, grpc_port: grpc.port });
  return {
    httpPort,
    grpcPort: grpc.port,
    registry,
    dispatcher,
    health,
    ledger,
    providers,
    aliases,
    fleet,
    ...shutdownOf({ consumer, grpc, dispatcher, ledger, aliasSync, loops, fleet, rateLimits, clock, log }),
  };
}
