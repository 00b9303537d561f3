/**
 * The per-run scheduler setup: the real scheduler's options, health gates, queue, demand tracker and output
 * estimator as the coordinator wires them, plus the Go warm-pool controller when the worst-case policy runs.
 */
import type { CatalogEntry } from "../../models/catalog.js";
import { DemandTracker } from "../../scheduler/demand-tracker.js";
import { RequestQueue } from "../../scheduler/request-queue.js";
import { resolveSchedulerOptions } from "../../scheduler/scheduler-options.js";
import type { HealthGates } from "../../scheduler/types.js";
import { OutputEstimator } from "../../util/output-estimator.js";
import { worstCasePolicy } from "./baseline/worst-case-policy.js";
import { GoWarmPool, type GoWarmPoolOptions } from "./baseline/worst-case-warm-pool.js";
import type { Scenario } from "./scenario.js";
import type { SimRequest } from "./sim-request.js";

/**
 * The policies a run can use: the scheduler's own, the Go coordinator's plugged into its seam, or the
 * clairvoyant bound (bound/clairvoyant-policy.ts), which routes outside the scheduler with perfect knowledge.
 */
export type PolicyName = "kv-aware" | "worst-case" | "clairvoyant";

/** The scheduler's state for one run. */
export interface SimScheduler {
  options: ReturnType<typeof resolveSchedulerOptions>;
  /** Load cooldowns by `providerId|model`, until the time in ms. */
  loadCooldown: Map<string, number>;
  health: HealthGates;
  estimator: OutputEstimator;
  queue: RequestQueue<SimRequest>;
  demand: DemandTracker;
  lastLoadAt: Map<string, number>;
  goPool: GoWarmPool | undefined;
  goOptions: GoWarmPoolOptions;
}

/** Wires the scheduler for a run of `scenario` under `policy`. */
export function buildSimScheduler(
  scenario: Scenario,
  policy: PolicyName,
  catalog: readonly CatalogEntry[],
): SimScheduler {
  const options = resolveSchedulerOptions({
    policy: policy === "worst-case" ? worstCasePolicy : undefined,
    toolsFloorWaivedByNormalization: true,
  });
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
  return { options, loadCooldown, health, estimator, queue, demand, lastLoadAt, goPool, goOptions };
}
