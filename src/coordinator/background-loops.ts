/**
 * The coordinator's own periodic work once it serves: the warm-pool loop (asks providers to load what demand
 * needs) and the fleet gauges, reported on a fixed interval rather than only on change.
 */
import type { Config } from "../config/config.js";
import type { HealthTracker } from "../health/health-tracker.js";
import type { AliasBook } from "../models/model-aliases.js";
import type { CatalogEntry } from "../models/catalog.js";
import type { PoolKeeper } from "../pool-keeper.js";
import type { ProviderService } from "../protocol/provider-service.js";
import type { ProviderRegistry } from "../registry/provider-registry.js";
import type { CapacitySnapshot } from "../scheduler/capacity.js";
import type { DemandTracker } from "../scheduler/demand-tracker.js";
import { poolRows } from "../scheduler/model-pools.js";
import type { SchedulerOptions } from "../scheduler/scheduler-options.js";
import { reportFleetGauges, reportPoolGauges } from "../telemetry/fleet-gauges.js";
import { gauge, reportGaugesEvery } from "../telemetry/metrics.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";
import { WarmPoolLoop } from "../warm-pool-loop.js";

/** What the loops read. */
export interface BackgroundLoopDeps {
  registry: ProviderRegistry;
  providers: ProviderService;
  clock: Clock;
  demand: DemandTracker;
  health: HealthTracker;
  catalog: readonly CatalogEntry[];
  schedulerOptions: Readonly<SchedulerOptions>;
  pools: PoolKeeper;
  aliases: AliasBook;
  /** The public capacity snapshot at `nowMs` (scheduler/capacity.ts). */
  fleetSnapshot: (nowMs: number) => CapacitySnapshot;
  log: Logger;
}

/** The running loops; each stop is idempotent. */
export interface BackgroundLoops {
  /** Stops the warm-pool loop (draining stops it; the gauges go on until close). */
  stopWarmPool(): void;
  stopGauges(): void;
}

/** Starts the warm-pool loop and, if `metricsGaugeIntervalMs` > 0, the gauge reports. */
export function startBackgroundLoops(config: Config, d: BackgroundLoopDeps): BackgroundLoops {
  const { registry, clock, pools } = d;
  const warmPool = new WarmPoolLoop({
    registry,
    directory: d.providers,
    clock,
    demand: d.demand,
    health: d.health,
    catalog: d.catalog,
    schedulerOptions: d.schedulerOptions,
    intervalMs: config.warmPoolIntervalMs,
    log: d.log,
    poolsOf: (m) => pools.poolsOf(m),
  });
  warmPool.start();
  // Gauges on a fixed interval, not only on change: the fleet per model (the capacity snapshot), connected providers.
  let reportedPools: ReadonlySet<string> = new Set();
  const refreshGauges = () => {
    gauge("providers.connected", registry.size);
    reportFleetGauges(d.fleetSnapshot(clock.nowMs()).models);
    if (pools.enabled) reportedPools = reportPoolGauges(poolRows(registry.view(), d.aliases.current), reportedPools);
  };
  const stopGauges =
    config.metricsGaugeIntervalMs > 0
      ? reportGaugesEvery(config.metricsGaugeIntervalMs, refreshGauges)
      : () => undefined;
  return { stopWarmPool: () => warmPool.stop(), stopGauges };
}
