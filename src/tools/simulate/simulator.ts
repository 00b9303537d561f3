/**
 * The routing simulator: drives the REAL scheduler ({@link pick}, admission, {@link RequestQueue},
 * {@link planWarmPool}, {@link DemandTracker}, {@link OutputEstimator}) with a fake clock over a modelled fleet
 * of {@link SimProvider}s and a workload. Time advances in fixed steps (`tickMs`); arrivals, completions,
 * loads, heartbeats, queue drains and warm-pool ticks are processed at each step, in that order, so hours
 * of traffic run in seconds. Deterministic by seed. Owns the event loop; setup and metrics live in sim-*.ts.
 */
import { defaultCatalog, type CatalogEntry } from "../../models/catalog.js";
import { ModelAliases } from "../../models/model-aliases.js";
import { needsSeeding, pickInPools, poolsFor, seedPool } from "../../scheduler/model-pools.js";
import { pick } from "../../scheduler/pick.js";
import { planWarmPool } from "../../scheduler/warm-pool.js";
import { mulberry32 } from "../shared/mulberry32.js";
import { exponentialMs, type LogNormal } from "./prng.js";
import type { SimulationReport } from "./report.js";
import type { Scenario } from "./scenario.js";
import { applyHeartbeat, buildFleet } from "./sim-fleet.js";
import { SimMetrics } from "./sim-metrics.js";
import type { SimJob, SimProvider } from "./sim-provider.js";
import { newSimRequest, spawnWorkers, type SimRequest, type Worker } from "./sim-request.js";
import { buildSimScheduler, type PolicyName } from "./sim-scheduler.js";

/** How one run routes besides the policy. */
export interface RunOptions {
  /**
   * Model pools on (scheduler/model-pools.ts), as the coordinator runs them: each Mac seeded into one pool at its
   * first heartbeat, reassigned on demand only when idle and empty, `pool_exhausted` refusals at admission.
   */
  pools?: boolean;
}

export type { PolicyName };

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
  const { macs, macById, views, viewById, registryView } = buildFleet(scenario, catalog);

  const { options, loadCooldown, health, estimator, queue, demand, lastLoadAt, goPool, goOptions } = buildSimScheduler(
    scenario,
    policy,
    catalog,
  );
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
  const metrics = new SimMetrics();
  const statsOf = (model: string) => metrics.of(model);
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
    applyHeartbeat(v, m, now);
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
    const req = newSimRequest(random, `r${seq++}`, now, model, prompt, maxTokens, output, vision, worker);
    statsOf(model).arrivals++;
    demand.recordArrival(model, now);
    return req;
  };

  const openNext = scenario.openLoops.map((l) => l.startMs + exponentialMs(random, l.ratePerS));
  const workers = spawnWorkers(scenario);
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
      metrics.sample(macs, running, views, pooled);
    }
  }

  return metrics.report(
    { scenario: scenario.name, policy: pooled ? `${policy} + pools` : policy, seed, durationMs: scenario.durationMs },
    macs,
    (model) => queue.depth(model),
  );
}
