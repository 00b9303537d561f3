/**
 * The routing simulator: drives the REAL scheduler ({@link pick}, admission, {@link RequestQueue},
 * {@link planWarmPool}, {@link DemandTracker}, {@link OutputEstimator}) with a fake clock over a modelled fleet
 * of {@link SimProvider}s and a workload. Time advances in fixed steps (`tickMs`); arrivals, completions,
 * loads, heartbeats, queue drains and warm-pool ticks are processed at each step, in that order, so hours
 * of traffic run in seconds. Deterministic by seed.
 */
import { defaultCatalog, type CatalogEntry } from "../../models/catalog.js";
import { shapeOf } from "../../inference/types.js";
import type { InflightRequest, ProviderView } from "../../registry/types.js";
import { DemandTracker } from "../../scheduler/demand-tracker.js";
import { ModelAliases } from "../../models/model-aliases.js";
import { needsSeeding, pickInPools, poolsFor, seedPool } from "../../scheduler/model-pools.js";
import { pick } from "../../scheduler/pick.js";
import { RequestQueue } from "../../scheduler/request-queue.js";
import { resolveSchedulerOptions } from "../../scheduler/scheduler-options.js";
import { worstCasePolicy } from "./baseline/worst-case-policy.js";
import type { HealthGates, RouteRequest } from "../../scheduler/types.js";
import { planWarmPool } from "../../scheduler/warm-pool.js";
import { GoWarmPool, type GoWarmPoolOptions } from "./baseline/worst-case-warm-pool.js";
import { OutputEstimator } from "../../util/output-estimator.js";
import { mulberry32 } from "../shared/mulberry32.js";
import { exponentialMs, sampleLogNormal, type LogNormal } from "./prng.js";
import { ModelStats, type SimulationReport } from "./report.js";
import type { Scenario } from "./scenario.js";
import { SimProvider, type ModelFacts, type SimJob } from "./sim-provider.js";

interface SimRequest {
  route: RouteRequest;
  arrivalMs: number;
  outputTokens: number;
  worker: Worker | undefined;
  dispatchedAtMs: number;
  job: SimJob | undefined;
  providerId: string | undefined;
  wasQueued: boolean;
}

interface Worker {
  group: number;
  nextAtMs: number;
  busy: boolean;
}

type CoordView = Omit<ProviderView, "inflight" | "pendingLoads" | "slots"> & {
  slots: ProviderView["slots"];
  inflight: Map<string, InflightRequest>;
  pendingLoads: Map<string, number>;
};

/** How one run routes besides the policy. */
export interface RunOptions {
  /**
   * Model pools on (scheduler/model-pools.ts), as the coordinator runs them: each Mac seeded into one pool at its
   * first heartbeat, reassigned on demand only when idle and empty, `pool_exhausted` refusals at admission.
   */
  pools?: boolean;
}

/** The policies a run can use: the scheduler's own, or the Go coordinator's plugged into its seam. */
export type PolicyName = "kv-aware" | "worst-case";

/** Runs a scenario under a policy. */
export function runSimulation(
  scenario: Scenario,
  policy: PolicyName,
  seed: number,
  catalog: readonly CatalogEntry[] = defaultCatalog,
  run: RunOptions = {},
): SimulationReport {
  const pooled = run.pools === true;
  // No aliases: each build is its own pool, the pool-less coordinator's models one for one.
  const aliases = new ModelAliases();
  const random = mulberry32(seed);
  const pickRandom = mulberry32(seed ^ 0x9e3779b9);
  const options = resolveSchedulerOptions({
    policy: policy === "worst-case" ? worstCasePolicy : undefined,
    toolsFloorWaivedByNormalization: true,
  });
  const facts = new Map<string, ModelFacts>(
    catalog.map((m) => [
      m.id,
      {
        sizeBytes: m.sizeBytes,
        kvBytesPerToken: m.kvBytesPerToken,
        contextLength: m.contextLength,
        isVision: m.isVision,
      },
    ]),
  );
  const perf = new Map(scenario.perf.map((p) => [p.id, p]));
  const macs = scenario.fleet.map(
    (spec, i) => new SimProvider(`mac${i}`, spec, perf, facts, scenario.providerMaxConcurrency),
  );
  const macById = new Map(macs.map((m) => [m.id, m]));
  const views: CoordView[] = macs.map((m) => ({
    id: m.id,
    serial: m.id,
    accountId: "acct",
    version: m.spec.version,
    hardware: {
      chipName: m.spec.chipName,
      chipFamily: m.spec.chipFamily,
      memoryGb: m.spec.memoryGb,
      memoryBandwidthGbs: m.spec.memoryBandwidthGbs,
      gpuCores: 0,
    },
    decodeTps: m.soloTps(m.spec.models[0] ?? ""),
    prefillTps: m.prefillTps(m.spec.models[0] ?? ""),
    maxModelSlots: m.spec.maxModelSlots,
    models: m.advertisedModels(),
    status: "idle",
    memoryPressure: 0,
    cpuUsage: 0,
    thermal: "nominal",
    totalMemoryGb: m.spec.memoryGb,
    freeForLoadGb: m.spec.reportsFreeForLoad ? m.freeForLoadGb() : undefined,
    slots: [],
    warmModels: [],
    lastHeartbeatMs: 0,
    connectedAtMs: 0,
    inflight: new Map(),
    pendingLoads: new Map(),
  }));
  const viewById = new Map(views.map((v) => [v.id, v]));
  const registryView = { providers: views };

  const loadCooldown = new Map<string, number>();
  const health: HealthGates = {
    isCooledDown: () => false,
    isLoadCooledDown: (pid, model, now) => (loadCooldown.get(`${pid}|${model}`) ?? -1) > now,
  };
  const estimator = new OutputEstimator();
  const queue = new RequestQueue<SimRequest>({
    maxDepthPerModel: scenario.queueMaxDepth,
    maxWaitMs: scenario.queueMaxWaitMs,
  });
  const demand = new DemandTracker();
  const lastLoadAt = new Map<string, number>();
  // The worst-case policy runs the Go warm-pool controller and its kickColdDispatch (§3.3, §3.8).
  const goPool = policy === "worst-case" ? new GoWarmPool() : undefined;
  const goOptions: GoWarmPoolOptions = {
    scheduler: options,
    catalog,
    health,
    tickMs: scenario.warmPoolTickMs,
    lastLoadAtMs: lastLoadAt,
    queueDepth: (model) => queue.depth(model),
  };
  const startLoad = (providerId: string, model: string): void => {
    const mac = macById.get(providerId)!;
    if (mac.load(model, now)) {
      viewById.get(providerId)!.pendingLoads.set(model, now);
      lastLoadAt.set(providerId, now);
      statsOf(model).warmLoads++;
    } else {
      loadCooldown.set(`${providerId}|${model}`, now + scenario.loadCooldownMs);
      statsOf(model).loadRefusals++;
    }
  };
  const stats = new Map<string, ModelStats>();
  const statsOf = (model: string) => {
    let s = stats.get(model);
    if (!s) stats.set(model, (s = new ModelStats(model)));
    return s;
  };
  const running = new Map<string, SimRequest>();
  const retries: { atMs: number; req: SimRequest }[] = [];
  let seq = 0;
  let now = 0;

  /** Demand per pool and its members now, for seeding a Mac (the PoolKeeper's reading, coordinator side). */
  const poolLoad = () => {
    const snapshot = demand.snapshot(now);
    const members = new Map<string, number>();
    for (const v of views) if (v.pool !== undefined) members.set(v.pool, (members.get(v.pool) ?? 0) + 1);
    return {
      demandPerS: (pool: string) => snapshot.get(pool)?.arrivalRatePerS ?? 0,
      members: (pool: string) => members.get(pool) ?? 0,
    };
  };

  const heartbeat = (m: SimProvider) => {
    const v = viewById.get(m.id)!;
    v.slots = m.heartbeatSlots();
    v.warmModels = v.slots.filter((s) => s.state !== "loading").map((s) => s.model);
    v.freeForLoadGb = m.spec.reportsFreeForLoad ? m.freeForLoadGb() : undefined;
    v.status = v.slots.some((s) => s.numRunning > 0) ? "serving" : "idle";
    v.lastHeartbeatMs = now;
    for (const r of v.inflight.values()) r.seenByProvider = true;
    for (const s of v.slots) if (s.state !== "loading") v.pendingLoads.delete(s.model);
    v.heartbeats = (v.heartbeats ?? 0) + 1;
    if (pooled && needsSeeding(v, aliases)) v.pool = seedPool(v, aliases, poolLoad());
  };

  const capableIdleExists = (model: string) =>
    macs.some((m) => m.spec.models.includes(model) && m.fitsMemory(model) && m.isIdle());

  const refuse = (req: SimRequest, why: string) => {
    const st = statsOf(req.route.model);
    st.rejected++;
    st.rejectReasons.set(why, (st.rejectReasons.get(why) ?? 0) + 1);
    if (capableIdleExists(req.route.model)) st.refusedWhileIdle++;
    demand.recordRejection(req.route.model, now);
    goPool?.recordSpill(req.route.model);
    goPool?.recordPressure(req.route.model);
    if (req.worker) {
      req.worker.busy = false;
      req.worker.nextAtMs = now + 1000;
    }
  };

  const dispatch = (req: SimRequest, providerId: string, reserved: number, cold: boolean): void => {
    const mac = macById.get(providerId)!;
    const v = viewById.get(providerId)!;
    const job: SimJob = {
      requestId: req.route.requestId,
      promptTokens: req.route.traits.estimatedPromptTokens,
      outputTokens: req.outputTokens,
      prefillLeftMs: 0,
      generated: 0,
      firstTokenAtMs: undefined,
    };
    if (!mac.submit(req.route.model, job, now)) {
      // The provider refused the load: cooldown, exclude, re-pick after the round trip.
      loadCooldown.set(`${providerId}|${req.route.model}`, now + scenario.loadCooldownMs);
      statsOf(req.route.model).loadRefusals++;
      req.route = { ...req.route, exclude: new Set([...req.route.exclude, providerId]) };
      retries.push({ atMs: now + scenario.refusalDelayMs, req });
      return;
    }
    if (cold) {
      v.pendingLoads.set(req.route.model, now);
      lastLoadAt.set(providerId, now);
      statsOf(req.route.model).coldDispatches++;
      goPool?.recordSpill(req.route.model);
      goPool?.recordPressure(req.route.model);
    }
    if (req.job === undefined) statsOf(req.route.model).admitted++;
    req.job = job;
    req.providerId = providerId;
    req.dispatchedAtMs = now;
    v.inflight.set(req.route.requestId, {
      requestId: req.route.requestId,
      model: req.route.model,
      reservedTokens: reserved,
      usedTokens: job.promptTokens,
      remainingOutputTokens: Math.max(0, reserved - job.promptTokens),
      promptTokens: job.promptTokens,
      startedAtMs: now,
      seenByProvider: false,
    });
    running.set(req.route.requestId, req);
  };

  /** Routes a request; true if it left the coordinator (dispatched or finally refused). */
  const route = (req: SimRequest, fromQueue: boolean): "dispatched" | "queued" | "refused" | "blocked" => {
    const ctx = {
      nowMs: now,
      random: pickRandom,
      health,
      estimator,
      catalog,
      options,
      retryAfterMs: queue.retryAfterMs(req.route.model, now),
    };
    const r = pooled
      ? pickInPools(registryView, { ...req.route, pools: poolsFor(aliases, req.route.model) }, ctx)
      : pick(registryView, req.route, ctx);
    if (r.kind === "picked") {
      if (fromQueue) queue.shift(req.route.model, now);
      if (r.assignPool !== undefined) {
        viewById.get(r.providerId)!.pool = r.assignPool;
        statsOf(req.route.model).reassignments++;
      }
      dispatch(req, r.providerId, r.reservedTokens, r.cold);
      return "dispatched";
    }
    if (fromQueue) return "blocked";
    if (r.kind === "queue" && r.reason === "pool_exhausted") {
      refuse(req, "pool_exhausted");
      return "refused";
    }
    if (r.kind === "queue") {
      const e = queue.enqueue(req.route.model, req.route.requestId, req, now);
      if (e.kind === "full") {
        refuse(req, "queue_full");
        return "refused";
      }
      if (!req.wasQueued) {
        statsOf(req.route.model).queued++;
        goPool?.recordSpill(req.route.model);
        const kick = goPool?.kick(registryView, req.route.model, now, goOptions);
        if (kick !== undefined) startLoad(kick, req.route.model);
      }
      req.wasQueued = true;
      return "queued";
    }
    refuse(req, r.code);
    return "refused";
  };

  const newRequest = (
    model: string,
    prompt: LogNormal,
    maxTokens: number,
    output: LogNormal,
    vision: boolean,
    worker: Worker | undefined,
  ): SimRequest => {
    const traits = {
      maxTokens,
      estimatedPromptTokens: sampleLogNormal(random, prompt) + (vision ? 1100 : 0),
      hasTools: false,
      requiresVision: vision,
      stream: true,
    };
    const out = Math.min(maxTokens, sampleLogNormal(random, output));
    statsOf(model).arrivals++;
    demand.recordArrival(model, now);
    return {
      route: { requestId: `r${seq++}`, model, traits, shape: shapeOf(traits), exclude: new Set() },
      arrivalMs: now,
      outputTokens: Math.max(1, out),
      worker,
      dispatchedAtMs: 0,
      job: undefined,
      providerId: undefined,
      wasQueued: false,
    };
  };

  const openNext = scenario.openLoops.map((l) => l.startMs + exponentialMs(random, l.ratePerS));
  const workers: Worker[] = [];
  scenario.workers.forEach((g, gi) => {
    for (let i = 0; i < g.concurrency; i++) workers.push({ group: gi, nextAtMs: g.startMs + i * 50, busy: false });
  });
  const hbOffset = macs.map((_, i) => (i * 97) % scenario.heartbeatMs);
  const sampleEvery = 10_000;
  let nextSample = 0;
  let nextPlan = 0;

  for (now = 0; now < scenario.durationMs; now += scenario.tickMs) {
    // 1. Arrivals: open loops, closed-loop workers, delayed re-picks after a refused load.
    scenario.openLoops.forEach((l, i) => {
      while (openNext[i]! <= now && openNext[i]! < l.endMs) {
        route(newRequest(l.model, l.prompt, l.maxTokens, l.output, l.vision, undefined), false);
        openNext[i]! += exponentialMs(random, l.ratePerS);
      }
    });
    for (const w of workers) {
      const g = scenario.workers[w.group]!;
      if (w.busy || w.nextAtMs > now || now < g.startMs || now >= g.endMs) continue;
      w.busy = true;
      route(newRequest(g.model, g.prompt, g.maxTokens, g.output, g.vision, w), false);
    }
    for (let i = retries.length - 1; i >= 0; i--) {
      if (retries[i]!.atMs > now) continue;
      route(retries.splice(i, 1)[0]!.req, false);
    }

    // 2. Providers advance; completions settle; changed providers report at once.
    macs.forEach((m, i) => {
      const ev = m.tick(now, scenario.tickMs, scenario.idleUnloadMs);
      const v = viewById.get(m.id)!;
      for (const job of ev.completed) {
        const req = running.get(job.requestId)!;
        running.delete(job.requestId);
        v.inflight.delete(job.requestId);
        const st = statsOf(req.route.model);
        st.completed++;
        st.ttftMs.push((job.firstTokenAtMs ?? now) - req.arrivalMs);
        st.e2eMs.push(now - req.arrivalMs);
        st.outputTokens += job.outputTokens;
        estimator.observe(req.route.model, job.outputTokens, req.route.traits.maxTokens);
        demand.recordCompletion(req.route.model, now - req.dispatchedAtMs, now);
        queue.recordService(req.route.model, now);
        if (req.worker) {
          req.worker.busy = false;
          req.worker.nextAtMs = now + scenario.workers[req.worker.group]!.thinkMs;
        }
      }
      for (const r of v.inflight.values()) {
        const j = running.get(r.requestId)?.job;
        if (j) {
          // ceil: one streamed token already means the prefill is over (cost.ts prefill backlog).
          r.usedTokens = j.promptTokens + Math.ceil(j.generated);
          r.remainingOutputTokens = Math.max(0, r.reservedTokens - r.usedTokens);
        }
      }
      if (ev.changed || (now + hbOffset[i]!) % scenario.heartbeatMs < scenario.tickMs) heartbeat(m);
    });

    // 3. Queue: expire, then drain every model while picks succeed.
    for (const e of queue.expire(now)) refuse(e.item, "queue_timeout");
    for (const model of queue.models()) {
      demand.setQueueDepth(model, queue.depth(model));
      for (let e = queue.peek(model); e; e = queue.peek(model)) if (route(e.item, true) !== "dispatched") break;
    }

    // 4. Warm pool and sampling.
    if (now >= nextPlan) {
      nextPlan += scenario.warmPoolTickMs;
      const plan = goPool
        ? goPool.plan(registryView, now, goOptions)
        : planWarmPool(registryView, demand.snapshot(now), now, {
            scheduler: options,
            catalog,
            health,
            lastLoadAtMs: lastLoadAt,
            ...(pooled ? { poolsOf: (m: string) => aliases.resolve(m).pools } : {}),
          });
      for (const l of plan.load) startLoad(l.providerId, l.model);
    }
    if (now >= nextSample) {
      nextSample += sampleEvery;
      for (const model of new Set([...stats.keys()])) {
        let loaded = 0;
        let runningMacs = 0;
        for (const m of macs) {
          if (m.isLoaded(model)) loaded++;
          if (m.isRunning(model)) runningMacs++;
        }
        statsOf(model).loadedSamples.push(loaded);
        let inflight = 0;
        for (const r of running.values()) if (r.route.model === model) inflight++;
        statsOf(model).inflightSamples.push(inflight);
        statsOf(model).runningSamples.push(runningMacs);
        if (pooled) statsOf(model).poolMemberSamples.push(views.filter((v) => v.pool === model).length);
      }
    }
  }

  const capableMacs = (model: string) =>
    macs.filter((m) => m.spec.models.includes(model) && m.fitsMemory(model)).length;
  for (const st of stats.values()) {
    st.stillQueued = queue.depth(st.model);
    st.capableMacs = capableMacs(st.model);
    let busy = 0;
    for (const m of macs) busy += m.busyMsByModel.get(st.model) ?? 0;
    st.busyMacMs = busy;
  }
  return {
    scenario: scenario.name,
    policy: pooled ? `${policy} + pools` : policy,
    seed,
    durationMs: scenario.durationMs,
    macs: macs.length,
    models: [...stats.values()]
      .sort((a, b) => a.model.localeCompare(b.model))
      .map((s) => s.summary(scenario.durationMs)),
  };
}
