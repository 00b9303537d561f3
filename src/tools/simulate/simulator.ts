/**
 * The routing simulator: drives the REAL scheduler ({@link pick}, admission, {@link RequestQueue},
 * {@link planWarmPool}, {@link DemandTracker}, {@link OutputEstimator}) with a fake clock over a modelled fleet
 * of {@link SimProvider}s and a workload. Time advances in fixed steps (`tickMs`); churn (Macs leaving and
 * joining, throttling), arrivals, completions, loads, heartbeats, queue drains and warm-pool ticks are processed
 * at each step, in that order, so hours of traffic run in seconds. Deterministic by seed. Owns the event loop;
 * setup and metrics live in sim-*.ts. The `clairvoyant` policy is the exception that routes around the
 * scheduler: the bound (bound/clairvoyant-policy.ts) reads the Macs' true state and needs no warm pool.
 */
import { defaultCatalog, type CatalogEntry } from "../../models/catalog.js";
import { ModelAliases } from "../../models/model-aliases.js";
import { needsSeeding, pickInPools, poolsFor, seedPool } from "../../scheduler/model-pools.js";
import { pick } from "../../scheduler/pick.js";
import { planWarmPool } from "../../scheduler/warm-pool.js";
import { mulberry32 } from "../shared/mulberry32.js";
import { chooseClairvoyant, LoadWindow } from "./bound/clairvoyant-policy.js";
import { exponentialMs, randomStream, type LogNormal } from "./prng.js";
import type { SimulationReport } from "./report.js";
import type { OpenLoop, Scenario } from "./scenario.js";
import { applyHeartbeat, buildFleet } from "./sim-fleet.js";
import { decodeRateTps, meetsServiceLevel, SERVICE_LEVEL } from "./service-level.js";
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
  /** Watches a run (tests check invariants with it): called after every step, and at every completion. */
  observe?: {
    step?(nowMs: number, macs: readonly SimProvider[]): void;
    completed?(requestId: string, model: string, firstTokenMs: number): void;
  };
}

export type { PolicyName };

/** Random streams of closed-loop workers start at this index; open loops use 0, 1, … */
const WORKER_STREAMS = 0x10000;

/** Runs a scenario under a policy. */
export function runSimulation(
  scenario: Scenario,
  policy: PolicyName,
  seed: number,
  catalog: readonly CatalogEntry[] = defaultCatalog,
  run: RunOptions = {},
): SimulationReport {
  const pooled = run.pools === true;
  const bound = policy === "clairvoyant";
  const loadWindow = new LoadWindow();
  // No aliases: each build is its own pool, the pool-less coordinator's models one for one.
  const aliases = new ModelAliases();
  // Common random numbers: each arrival source draws from a stream of its own, so every policy sees the same
  // open-loop arrivals (times and sizes) and each closed-loop worker the same sequence of requests. With one
  // shared stream a policy that finished a worker's request earlier shifted every later draw: fleet-churn's
  // arrivals differed by up to 4 % between policies, more than the differences being measured.
  const openRandom = scenario.openLoops.map((_, i) => randomStream(seed, i));
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
    macs.some((m) => m.online && m.spec.models.includes(model) && m.fitsMemory(model) && m.isIdle());

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

  const dispatch = (req: SimRequest, providerId: string, reserved: number, cold: boolean, prewarmed = false): void => {
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
    if (!mac.submit(req.route.model, job, now, prewarmed)) {
      // The provider refused the load: cooldown, exclude, re-pick after the round trip.
      loadCooldown.set(`${providerId}|${req.route.model}`, now + scenario.loadCooldownMs);
      statsOf(req.route.model).loadRefusals++;
      req.route = { ...req.route, exclude: new Set([...req.route.exclude, providerId]) };
      retries.push({ atMs: now + scenario.refusalDelayMs, req });
      return;
    }
    if (prewarmed) statsOf(req.route.model).warmLoads++;
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

  /**
   * The clairvoyant bound routes outside the scheduler (bound/clairvoyant-policy.ts): never refuses, queues
   * only while no Mac that could hold the model is connected.
   */
  const routeBound = (req: SimRequest, fromQueue: boolean): "dispatched" | "queued" | "refused" | "blocked" => {
    const online = macs.filter((m) => m.online);
    const breq = {
      model: req.route.model,
      promptTokens: req.route.traits.estimatedPromptTokens,
      outputTokens: req.outputTokens,
    };
    const c = chooseClairvoyant(online, breq, now, loadWindow);
    if (c) {
      if (fromQueue) queue.shift(req.route.model, now);
      dispatch(req, c.mac.id, breq.promptTokens + breq.outputTokens, c.loads, c.prewarmed);
      return "dispatched";
    }
    if (fromQueue) return "blocked";
    const e = queue.enqueue(req.route.model, req.route.requestId, req, now);
    if (e.kind === "full") {
      refuse(req, "queue_full");
      return "refused";
    }
    if (!req.wasQueued) statsOf(req.route.model).queued++;
    req.wasQueued = true;
    return "queued";
  };

  /** Routes a request; true if it left the coordinator (dispatched or finally refused). */
  const route = (req: SimRequest, fromQueue: boolean): "dispatched" | "queued" | "refused" | "blocked" => {
    if (bound) return routeBound(req, fromQueue);
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
    random: () => number,
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

  // A diurnal loop draws at its peak rate and keeps each arrival with probability rate(t) ÷ peak (thinning).
  const peakOf = (l: OpenLoop) => l.ratePerS * (1 + (l.diurnal?.amplitude ?? 0));
  const keep = (l: OpenLoop, t: number, random: () => number) =>
    l.diurnal === undefined ||
    random() * peakOf(l) <
      l.ratePerS *
        (1 + l.diurnal.amplitude * Math.sin((2 * Math.PI * (t + (l.diurnal.phaseMs ?? 0))) / l.diurnal.periodMs));
  const within = (ws: readonly { fromMs: number; toMs: number }[] | undefined, t: number) =>
    ws?.find((w) => w.fromMs <= t && t < w.toMs);
  const churnStep = () => {
    macs.forEach((m) => {
      const v = viewById.get(m.id)!;
      const online = m.spec.online === undefined || within(m.spec.online, now) !== undefined;
      if (m.online && !online) {
        for (const job of m.disconnect()) {
          const req = running.get(job.requestId)!;
          running.delete(job.requestId);
          statsOf(req.route.model).interrupted++;
          retries.push({ atMs: now + scenario.refusalDelayMs, req });
        }
        v.inflight.clear();
        v.pendingLoads.clear();
        v.slots = [];
        v.warmModels = [];
        const at = registryView.providers.indexOf(v);
        if (at >= 0) registryView.providers.splice(at, 1);
      } else if (!m.online && online) {
        m.online = true;
        registryView.providers.push(v);
        heartbeat(m);
      }
      const t = within(m.spec.throttled, now) as { factor: number } | undefined;
      m.speedFactor = t?.factor ?? 1;
      v.thermal = t ? "serious" : "nominal";
    });
  };
  const openNext = scenario.openLoops.map((l, i) => l.startMs + exponentialMs(openRandom[i]!, peakOf(l)));
  const workers = spawnWorkers(scenario);
  const workerRandom = workers.map((_, i) => randomStream(seed, WORKER_STREAMS + i));
  const issued = scenario.workers.map(() => 0);
  /** Group `gi` may send now: inside its window, and short of its request count if it has one. */
  const sending = (gi: number) => {
    const g = scenario.workers[gi]!;
    return now >= g.startMs && now < g.endMs && (g.requests === undefined || issued[gi]! < g.requests);
  };
  const hbOffset = macs.map((_, i) => (i * 97) % scenario.heartbeatMs);
  const sampleEvery = 10_000;
  let nextSample = 0;
  let nextPlan = 0;

  const churn = scenario.fleet.some((f) => f.online !== undefined || f.throttled !== undefined);
  for (now = 0; now < scenario.durationMs; now += scenario.tickMs) {
    // 0. Churn: Macs leave (their requests are routed again) and join; thermal throttling starts and ends.
    if (churn) churnStep();
    // 1. Arrivals: open loops, closed-loop workers, delayed re-picks after a refused load.
    scenario.openLoops.forEach((l, i) => {
      const random = openRandom[i]!;
      while (openNext[i]! <= now && openNext[i]! < l.endMs) {
        if (keep(l, openNext[i]!, random))
          route(newRequest(random, l.model, l.prompt, l.maxTokens, l.output, l.vision, undefined), false);
        openNext[i]! += exponentialMs(random, peakOf(l));
      }
    });
    workers.forEach((w, i) => {
      const g = scenario.workers[w.group]!;
      if (w.busy || w.nextAtMs > now || !sending(w.group)) return;
      issued[w.group]!++;
      w.busy = true;
      route(newRequest(workerRandom[i]!, g.model, g.prompt, g.maxTokens, g.output, g.vision, w), false);
    });
    for (let i = retries.length - 1; i >= 0; i--) {
      if (retries[i]!.atMs > now) continue;
      route(retries.splice(i, 1)[0]!.req, false);
    }

    // 2. Providers advance; completions settle; changed providers report at once.
    macs.forEach((m, i) => {
      if (!m.online) return;
      const ev = m.tick(now, scenario.tickMs, scenario.idleUnloadMs);
      const v = viewById.get(m.id)!;
      for (const job of ev.completed) {
        const req = running.get(job.requestId)!;
        running.delete(job.requestId);
        v.inflight.delete(job.requestId);
        const st = statsOf(req.route.model);
        st.completed++;
        const ttft = (job.firstTokenAtMs ?? now) - req.arrivalMs;
        st.ttftMs.push(ttft);
        run.observe?.completed?.(req.route.requestId, req.route.model, ttft);
        const decode = decodeRateTps(job.outputTokens, job.firstTokenAtMs ?? now, job.finishedAtMs ?? now);
        if (meetsServiceLevel(ttft, decode)) st.good++;
        else if (ttft > SERVICE_LEVEL.firstTokenMs) st.missedFirstToken++;
        else st.missedDecode++;
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
    if (now >= nextPlan && !bound) {
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
    run.observe?.step?.(now, macs);
    if (now >= nextSample) {
      nextSample += sampleEvery;
      // A sized burst is on while one of its workers has a request out or the group may still send.
      const burst = workers.some(
        (w) => scenario.workers[w.group]!.requests !== undefined && (w.busy || sending(w.group)),
      );
      metrics.sample(macs, running, views, pooled, burst);
    }
  }

  return metrics.report(
    { scenario: scenario.name, policy: pooled ? `${policy} + pools` : policy, seed, durationMs: scenario.durationMs },
    macs,
    (model) => queue.depth(model),
  );
}
