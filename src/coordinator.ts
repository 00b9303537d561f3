/**
 * The composition root: builds the registry, health tracker, scheduler binding, dispatcher, ledger, rate
 * limiter and both servers from a Config and an open database, and tears them down in order.
 */
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Kysely } from "kysely";
import { adminGate, adminServicePathPrefix } from "./admin/admin-gate.js";
import { registerAdminService } from "./admin/admin-service.js";
import { defaultCatalog, type CatalogEntry } from "./models/catalog.js";
import type { Config } from "./config/config.js";
import { Dispatcher } from "./dispatch/dispatcher.js";
import { classifyProviderError } from "./health/classify-provider-error.js";
import { HealthTracker } from "./health/health-tracker.js";
import { AuthFailureThrottle } from "./http/auth-failure-throttle.js";
import { BodyBudget } from "./http/body-budget.js";
import { ConsumerServer } from "./http/consumer-server.js";
import { requestLimitsFrom } from "./http/request-limits.js";
import { restHandler, type Readiness, type RouteDeps } from "./http/routes.js";
import type { Preflight } from "./http/inference-route.js";
import { pendingMigrations } from "./ledger/database.js";
import { PoolKeeper } from "./pool-keeper.js";
import { providerVerdict } from "./scheduler/provider-verdict.js";
import { createModelAliasStore } from "./ledger/model-alias-store.js";
import { createPostgresLedger, type PostgresLedger } from "./ledger/postgres-ledger.js";
import type { Database } from "./ledger/schema.js";
import { startGrpcServer } from "./protocol/grpc-server.js";
import { ProviderService } from "./protocol/provider-service.js";
import { createProviderIdentityStore } from "./ledger/provider-identities.js";
import { DivergenceTracker } from "./usage/divergence-tracker.js";
import { reportFleetGauges, reportPoolGauges } from "./telemetry/fleet-gauges.js";
import { count, gauge, reportGaugesEvery } from "./telemetry/metrics.js";
import { createPrometheusEndpoint } from "./telemetry/prometheus.js";
import { createRateLimiter, type RateLimiterOptions } from "./ratelimit/limiter.js";
import { ProviderRegistry } from "./registry/provider-registry.js";
import type { ProviderView } from "./registry/types.js";
import { capacitySnapshot } from "./scheduler/capacity.js";
import { DemandTracker } from "./scheduler/demand-tracker.js";
import { AliasBook } from "./models/model-aliases.js";
import { pickInPools, poolRows } from "./scheduler/model-pools.js";
import { resolveSchedulerOptions } from "./scheduler/scheduler-options.js";
import type { RouteRequest } from "./scheduler/types.js";
import { ModelDirectory } from "./models/model-directory.js";
import { WarmPoolLoop } from "./warm-pool-loop.js";
import { systemClock, type Clock } from "./util/clock.js";
import { OutputEstimator } from "./util/output-estimator.js";
import { createLogger, type Logger } from "./util/logger.js";

export interface CoordinatorDeps {
  db: Kysely<Database>;
  clock?: Clock;
  random?: () => number;
  catalog?: readonly CatalogEntry[];
  logger?: Logger;
  /** Per-tier rate-limit overrides (tests use small limits to reach them quickly). Default: the tier defaults. */
  rateLimitTiers?: RateLimiterOptions["tiers"];
}

export interface Coordinator {
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly registry: ProviderRegistry;
  readonly dispatcher: Dispatcher;
  readonly health: HealthTracker;
  readonly ledger: PostgresLedger;
  readonly providers: ProviderService;
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

export interface DrainResult {
  /** True if every request finished within the grace period. */
  drained: boolean;
  /** HTTP requests still open when the grace period ended (close() cuts them). */
  unfinished: number;
  waitedMs: number;
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
  });

  // Migrations normally ran before start (openDatabase). A replica started against an older schema (another
  // replica still migrating) stays unready on /readyz until they have; each probe then re-reads, one at a time.
  let migrationsCurrent = (await pendingMigrations(deps.db)).length === 0;
  let migrationsRecheck: Promise<void> | undefined;
  const readiness = (): Readiness => {
    if (!migrationsCurrent) {
      migrationsRecheck ??= pendingMigrations(deps.db)
        .then((p) => {
          migrationsCurrent = p.length === 0;
          // The alias table may be one of the migrations this replica waited for: read it now.
          if (migrationsCurrent) refreshAliases().catch((e) => log.warn("model aliases not loaded", { error: String(e) }));
        }, () => {})
        .finally(() => (migrationsRecheck = undefined));
    }
    const degraded = ledger.status().degraded;
    return {
      ready: migrationsCurrent && !degraded && !http.draining,
      checks: { migrations: migrationsCurrent ? "ok" : "pending", ledger: degraded ? "degraded" : "ok", serving: http.draining ? "draining" : "ok" },
    };
  };

  const ledger = await createPostgresLedger({
    db: deps.db,
    clock,
    defaultPrices: Object.fromEntries(catalog.map((m) => [m.id, { inputMicroUsdPerMtok: BigInt(m.inputMicroUsdPerMtok), outputMicroUsdPerMtok: BigInt(m.outputMicroUsdPerMtok) }])),
    leaseMicroUsd: BigInt(config.ledgerLeaseMicroUsd),
    overdraftMicroUsd: BigInt(config.ledgerOverdraftMicroUsd),
    holderStaleMs: config.ledgerHolderStaleMs,
    apiKeyCache: {
      ttlMs: config.apiKeyCacheTtlMs,
      negativeTtlMs: config.apiKeyNegativeCacheTtlMs,
      staleIfErrorMs: config.apiKeyStaleIfErrorMs,
      maxKeys: config.apiKeyCacheMaxKeys,
      maxUnknownKeys: config.apiKeyNegativeCacheMaxKeys,
    },
    onError: (e) => log.warn("ledger background error", { error: String(e) }),
    // One line per quarantined write: a request that was neither billed nor paid until an operator acts.
    onQuarantine: (op, e) =>
      log.error("ledger write quarantined", {
        op: op.kind,
        ...("requestId" in op ? { request_id: op.requestId } : {}),
        ...(op.kind === "reserve" ? { account_id: op.accountId, model: op.model } : {}),
        ...(op.kind === "settle" ? { provider_id: op.providerId } : {}),
        sqlstate: (e as { code?: string })?.code,
        reason: String((e as Error)?.message ?? e),
      }),
  });
  const recovered = await ledger.recover();
  log.info("ledger recovered", { ...recovered });

  const limiter = createRateLimiter({
    processShare: 1 / config.replicas,
    // An operator's SetLimits served here wins until every cached principal carries it (one key-cache TTL).
    recentOverrideMs: config.apiKeyCacheTtlMs,
    ...(deps.rateLimitTiers ? { tiers: deps.rateLimitTiers } : {}),
  });

  const identities = createProviderIdentityStore(deps.db);

  // Model aliases: loaded here (or, on a schema still migrating, once /readyz finds it migrated); a change served by
  // this process replaces the book at once. Refreshes run one after another, so the last to finish read the table
  // after every change before it committed; a failed one fails its caller, not the next.
  const aliasStore = createModelAliasStore(deps.db);
  const aliases = new AliasBook(migrationsCurrent ? await aliasStore.list() : []);
  let aliasRefresh: Promise<void> = Promise.resolve();
  const refreshAliases = (): Promise<void> =>
    (aliasRefresh = aliasRefresh.catch(() => undefined).then(async () => aliases.replace(await aliasStore.list())));

  // Another replica's alias changes arrive by re-reading the table (a handful of rows) on an interval.
  const aliasTimer =
    config.modelAliasRefreshMs > 0
      ? setInterval(() => {
          if (migrationsCurrent) refreshAliases().catch((e) => log.warn("model aliases not refreshed", { error: String(e) }));
        }, config.modelAliasRefreshMs).unref()
      : undefined;

  const pools = new PoolKeeper({ enabled: config.modelPools, registry, aliases, demand, clock, log });

  const usageDivergence = new DivergenceTracker();
  const providers = new ProviderService({
    registry,
    clock,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    heartbeatTimeoutMs: config.heartbeatTimeoutMs,
    challengeIntervalMs: config.providerChallengeIntervalMs,
    challengeTimeoutMs: config.providerChallengeTimeoutMs,
    revocationCheckMs: config.providerRevocationCheckMs,
    maxMachinesPerAccount: config.providerMaxMachinesPerAccount,
    authenticate: (token) => ledger.accounts.authenticateProvider(token),
    identities,
    revokedTokens: (ids) => ledger.accounts.revokedProviderTokens(ids),
    onConnected: (rec) => {
      health.forgetProvider(rec.id);
      // The machine's usage record outlives its sessions (its id is stable): a reconnect does not wash it.
      registry.setCostPenalty(rec.id, usageDivergence.penalty(rec.id));
    },
    onDisconnected: (rec) => health.forgetProvider(rec.id),
    onLoadStatus: (rec, model, ok, error) => {
      if (!ok) {
        health.recordLoadRefusal(rec.id, model, clock.nowMs());
        log.warn("model load failed", { provider_id: rec.id, model, error });
      }
    },
    logger: log,
  });

  let dispatcher: Dispatcher;
  // One scheduler binding for preflight, selection and every failover, so their gates cannot drift. The
  // provider health breaker fails open: if it alone would leave no route, breaker-open providers are retried.
  const route = (req: RouteRequest) => {
    const ctx = {
      nowMs: clock.nowMs(),
      random,
      health,
      estimator,
      catalog,
      options: schedulerOptions,
      retryAfterMs: dispatcher.queue.retryAfterS(req.model) * 1000,
    };
    const d = pickInPools(registry.view(), req, ctx);
    if (d.kind === "reject" && d.code === "model_unavailable") return pickInPools(registry.view(), req, { ...ctx, health: health.withoutBreaker() });
    return d;
  };
  // Dispatch (first pick, queue drain, failover, backups) carries out a reassignment in the same synchronous step
  // as the dispatch it precedes; preflight only looks.
  const dispatchRoute = (req: RouteRequest) => {
    const d = route(req);
    if (d.kind === "picked" && d.assignPool !== undefined) pools.reassign(d.providerId, d.assignPool);
    return d;
  };
  /**
   * Preflight for a public model name: the alias's desired build, else its previous build when only that one
   * can take the request now (a rollout never sheds while the old build has room), else the desired build's
   * verdict (queue, pool_exhausted, reject). The caller's constraints (`req.pinnedAccountId`, `allowedSerials`,
   * `callerAccountId`) ride along to every pick.
   */
  const preflightRoute = (req: RouteRequest): Preflight => {
    const resolved = aliases.current.resolve(req.model);
    // A request routed by its caller (self, provider_serials) bypasses the public pools.
    const poolKeys = req.pinnedAccountId !== undefined || req.allowedSerials !== undefined ? undefined : pools.poolsOf(req.model);
    let first: Preflight | undefined;
    for (const build of resolved.builds) {
      const decision = route({ ...req, model: build, ...(poolKeys !== undefined ? { pools: { keys: poolKeys, reassign: false } } : {}) });
      const p: Preflight = { build, decision, ...(poolKeys !== undefined ? { pools: poolKeys } : {}) };
      if (decision.kind === "picked") return p;
      first ??= p;
    }
    return first!;
  };
  dispatcher = new Dispatcher({
    registry,
    directory: providers,
    clock,
    health,
    classify: classifyProviderError,
    pick: dispatchRoute,
    options: {
      firstTokenBaseMs: config.firstTokenBaseMs,
      firstTokenPerPromptTokenMs: config.firstTokenPerPromptTokenMs,
      inferenceTimeoutMs: config.inferenceTimeoutMs,
      preambleContentTimeoutMs: config.preambleContentTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
      speculativeFraction: config.speculativeFraction,
      maxAttempts: config.maxDispatchAttempts,
      queueLimit: config.queueLimit,
      queueWaitMs: config.queueWaitMs,
    },
    log,
    onUsageChecked: ({ providerId, requestId, model, defended }) => {
      const verdict = usageDivergence.record(providerId, defended.overClaimed);
      registry.setCostPenalty(providerId, verdict.routingPenalty);
      if (!defended.overClaimed) return;
      const d = defended.detail;
      count("provider.usage_overclaims", { model });
      log.warn("provider usage over-claimed", {
        provider_id: providerId,
        request_id: requestId,
        model,
        // A refused claim (a count past the wire bound) reads as "refused", not as a number.
        claimed_prompt_tokens: Number.isFinite(d.claimed.promptTokens) ? d.claimed.promptTokens : "refused",
        claimed_completion_tokens: Number.isFinite(d.claimed.completionTokens) ? d.claimed.completionTokens : "refused",
        billed_prompt_tokens: defended.usage.promptTokens,
        billed_completion_tokens: defended.usage.completionTokens,
        routing_penalty: verdict.routingPenalty,
        reason: d.promptOverClaimed ? (d.completionOverClaimed ? "prompt and completion over the coordinator's count" : "prompt over the coordinator's count") : "completion over the coordinator's count",
      });
      if (verdict.fence) {
        usageDivergence.forget(providerId);
        void providers.fence(providerId, "usage claims repeatedly above the coordinator's count").catch((e) => log.error("provider fence failed", { provider_id: providerId, reason: String(e) }));
      }
    },
  });

  const models = new ModelDirectory(catalog, registry, () => aliases.current);
  const verdictOf = (rec: ProviderView | undefined, fenceReason: string | null) =>
    providerVerdict({ provider: rec, fenceReason, nowMs: clock.nowMs(), health, options: schedulerOptions, poolsOn: pools.enabled });
  let capacityCache: { atMs: number; body: unknown } | undefined;
  const startedAtMs = clock.nowMs();
  // The closures below read `http` (declared further down, once the handler exists): they run per request, after
  // start-up, never while this function is still building the servers.
  const routeDeps: RouteDeps = {
    accounts: ledger.accounts,
    authFailures: new AuthFailureThrottle({ burst: config.authFailureBurst, refillPerSec: config.authFailureRefillPerS, maxAddresses: config.authFailureMaxAddresses }),
    trustedProxyHops: config.trustedProxyHops,
    ledger: ledger.ledger,
    limiter,
    dispatcher,
    clock,
    preflight: (req) => {
      const p = preflightRoute(req);
      // Public demand only: a request for the caller's own machines says nothing about what the pools need.
      if (req.pinnedAccountId !== undefined) return p;
      demand.recordArrival(p.build, clock.nowMs());
      // No room anywhere right now (the request will queue): capacity pressure for the warm-pool planner.
      if (p.decision.kind === "queue") demand.recordRejection(p.build, clock.nowMs());
      return p;
    },
    models,
    onFinished: (model, usage, maxTokens, durationMs) => {
      estimator.observe(model, usage.completionTokens, maxTokens);
      demand.recordCompletion(model, durationMs, clock.nowMs());
    },
    maxBodyBytes: config.maxBodyBytes,
    bodyBudget: new BodyBudget(config.maxInflightBodyBytes),
    limits: requestLimitsFrom(config),
    ...(config.corsAllowOrigin === "off" ? {} : { corsAllowOrigin: config.corsAllowOrigin }),
    log: (msg, fields) => log.warn(msg, fields),
    logger: log,
    capacity: () => {
      const now = clock.nowMs();
      // Like the Go coordinator: a draining process advertises no capacity, so routers send work elsewhere.
      if (http.draining) return { models: [], draining: true };
      if (!capacityCache || now - capacityCache.atMs > 2_000) {
        capacityCache = { atMs: now, body: capacitySnapshot(registry.view(), dispatcher.queue.depths(), catalog, now, { queueLimit: dispatcher.queue.limit, scheduler: schedulerOptions, poolsOf: (m) => pools.poolsOf(m), aliases: aliases.current }) };
      }
      return capacityCache.body;
    },
    health: () => ({
      status: http.draining ? "draining" : "ok",
      version: coordinatorVersion,
      uptime_s: Math.round((clock.nowMs() - startedAtMs) / 1000),
      providers_connected: registry.size,
      requests_in_flight: dispatcher.inflight,
      ledger: ledger.status(),
    }),
    readiness,
    ownedProviders: async (accountId) =>
      (await identities.listByAccount(accountId)).map((i) => {
        const rec = registry.get(i.providerId);
        const v = verdictOf(rec, i.fenceReason);
        return {
          object: "provider",
          id: i.providerId,
          provider_id: i.providerId,
          serial: i.serial,
          state: v.state,
          pool: rec?.pool ?? null,
          private_only: rec?.privateOnly ?? false,
          models: rec ? rec.models.map((m) => m.id) : [],
          routable: v.routable,
          reason: v.reason,
          connected: rec !== undefined,
          fenced: i.fenceReason !== null,
          ...(i.fenceReason !== null ? { fence_reason: i.fenceReason } : {}),
        };
      }),
    forgetOwnedProvider: async (accountId, serial) => {
      if (!(await identities.forget(serial, accountId))) return false;
      providers.disconnectSerial(serial, "provider identity forgotten by its owner");
      log.info("provider identity forgotten", { serial, account_id: accountId });
      return true;
    },
    usage: async (accountId, sinceMs) => {
      const u = await ledger.usage(accountId, sinceMs);
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

  const adminKey = config.adminKey ?? "";
  const rest = restHandler(routeDeps);
  const connect = connectNodeAdapter({
    routes: (router) =>
      registerAdminService(router, {
        adminKey,
        accounts: ledger.accounts,
        registry,
        providers,
        identities,
        limits: ledger.limits,
        aliases: {
          list: () => aliasStore.list(),
          set: async (a) => {
            await aliasStore.set(a);
            await refreshAliases();
          },
          delete: async (alias) => {
            const deleted = await aliasStore.delete(alias);
            if (deleted) await refreshAliases();
            return deleted;
          },
        },
        limiter,
        refreshSpendCaps: (subject) => ledger.refreshLimits(subject),
        nowMs: () => clock.nowMs(),
        usageDivergence: (id) => ({ overClaims: usageDivergence.overClaims(id), routingPenalty: usageDivergence.penalty(id) }),
        verdictOf: (id) => {
          const v = verdictOf(registry.get(id), null);
          return { routable: v.routable, reason: v.reason };
        },
        onInternalError: (e) => log.error("admin request failed", { error: String((e as Error)?.stack ?? e) }),
      }),
    // An admin typo (an unknown field, `"tier": "GOLD"`) is an error, not silently a default.
    jsonOptions: { ignoreUnknownFields: false },
    // A body sent without Content-Length is bounded here; a declared one is refused earlier, by adminGate.
    readMaxBytes: config.adminMaxBodyBytes,
    // The REST routes only serve HTTP/1.1 (the server is node:http), so the handler's narrower types hold.
    fallback: rest as unknown as Parameters<typeof connectNodeAdapter>[0]["fallback"],
  });
  // `/v1/*` goes straight to the REST routes: Connect paths are `/<package>.<Service>/<Method>`, and skipping the
  // adapter's own routing saves its per-request work on every inference call.
  // The admin key and the body limit are checked from the headers, before the adapter reads any body.
  const admin = adminGate({ adminKey, pathPrefixes: [adminServicePathPrefix], maxBodyBytes: config.adminMaxBodyBytes }, connect);
  // METRICS_PROMETHEUS=on: `GET /metrics` on this port (unauthenticated, so off by default).
  const prometheus = config.metricsPrometheus ? createPrometheusEndpoint() : undefined;
  const http = new ConsumerServer((req, res) => (prometheus && req.url === "/metrics" ? prometheus.handle(req, res) : req.url?.startsWith("/v1/") ? rest(req, res) : admin(req, res)), clock, {
    headersTimeoutMs: config.httpHeadersTimeoutMs,
    requestTimeoutMs: config.httpRequestTimeoutMs,
    keepAliveTimeoutMs: config.httpKeepAliveTimeoutMs,
    idleSocketTimeoutMs: config.httpIdleSocketTimeoutMs,
    closeLingerMs: config.httpCloseLingerMs,
  });
  let httpPort: number;
  let grpc: Awaited<ReturnType<typeof startGrpcServer>>;
  try {
    httpPort = await http.listen(config.httpPort, config.host);
    grpc = await startGrpcServer(providers, { host: config.host, port: config.grpcPort, keepaliveTimeMs: config.grpcKeepaliveMs });
  } catch (e) {
    // A port in use, most likely: undo what already runs (listener, session sweep, ledger background work).
    providers.closeAll("coordinator failed to start");
    clearInterval(aliasTimer);
    await http.stopListening();
    await ledger.close();
    await prometheus?.close();
    throw e;
  }

  const warmPool = new WarmPoolLoop({ registry, directory: providers, clock, demand, health, catalog, schedulerOptions, intervalMs: config.warmPoolIntervalMs, log, poolsOf: (m) => pools.poolsOf(m) });
  warmPool.start();
  // Gauges on a fixed interval, not only on change: the fleet per model (the capacity snapshot), connected providers.
  let reportedPools: ReadonlySet<string> = new Set();
  const refreshGauges = () => {
    gauge("providers.connected", registry.size);
    reportFleetGauges(capacitySnapshot(registry.view(), dispatcher.queue.depths(), catalog, clock.nowMs(), { queueLimit: dispatcher.queue.limit, scheduler: schedulerOptions, poolsOf: (m) => pools.poolsOf(m), aliases: aliases.current }).models);
    if (pools.enabled) reportedPools = reportPoolGauges(poolRows(registry.view(), aliases.current), reportedPools);
  };
  const stopGauges = config.metricsGaugeIntervalMs > 0 ? reportGaugesEvery(config.metricsGaugeIntervalMs, refreshGauges) : () => undefined;

  log.info("coordinator listening", { http_port: httpPort, grpc_port: grpc.port });

  let closing: Promise<void> | undefined;
  return {
    httpPort,
    grpcPort: grpc.port,
    registry,
    dispatcher,
    health,
    ledger,
    providers,
    aliases,
    drain: async (graceMs) => {
      const started = clock.nowMs();
      if (!http.draining) {
        http.startDraining();
        grpc.setServing(false);
        warmPool.stop();
        log.info("draining", { open_requests: http.openRequests, grace_ms: graceMs });
      }
      const drained = await http.untilIdle(graceMs);
      const result = { drained, unfinished: http.openRequests, waitedMs: clock.nowMs() - started };
      log.info(drained ? "drained" : "drain grace period ended with requests open", { ...result });
      return result;
    },
    close: () =>
      (closing ??= (async () => {
        http.startDraining();
        warmPool.stop();
        const httpClosed = http.stopListening();
        dispatcher.close();
        await grpc.close();
        // The providers are gone, so every open response now ends by itself (an in-band error after content, a
        // retryable 503 before) once its settlement is durable. Let them, briefly, before cutting sockets.
        await http.untilIdle(5_000);
        http.closeAllConnections();
        await httpClosed;
        clearInterval(aliasTimer);
        await ledger.close();
        stopGauges();
        await prometheus?.close();
      })()),
  };
}
