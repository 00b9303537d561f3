/**
 * Drives the pure warm-pool planner on a timer: every tick it asks how many Macs should hold each model warm
 * (Little's law over measured demand plus queue/reject pressure) and sends LoadModel to idle, capable
 * providers. Never evicts a busy model (the planner only picks idle providers).
 */
import type { CatalogEntry } from "./models/catalog.js";
import type { ProviderDirectory } from "./dispatch/provider-channel.js";
import type { ProviderRegistry } from "./registry/provider-registry.js";
import type { DemandTracker } from "./scheduler/demand-tracker.js";
import type { SchedulerOptions } from "./scheduler/scheduler-options.js";
import type { HealthGates } from "./scheduler/types.js";
import { planWarmPool } from "./scheduler/warm-pool.js";
import { count, gauge } from "./telemetry/metrics.js";
import type { Cancel, Clock } from "./util/clock.js";
import type { Logger } from "./util/logger.js";

export interface WarmPoolLoopOptions {
  registry: ProviderRegistry;
  directory: ProviderDirectory;
  clock: Clock;
  demand: DemandTracker;
  health: HealthGates;
  catalog: readonly CatalogEntry[];
  schedulerOptions: Readonly<SchedulerOptions>;
  /** Tick interval; 0 disables the loop. */
  intervalMs: number;
  log: Logger;
  /** Under model pools, the pools whose members may hold a model (scheduler/warm-pool.ts); absent = pools off. */
  poolsOf?(model: string): ReadonlySet<string> | undefined;
}

export class WarmPoolLoop {
  readonly #o: WarmPoolLoopOptions;
  readonly #lastLoadAtMs = new Map<string, number>();
  #timer: Cancel | undefined;
  #stopped = false;

  constructor(o: WarmPoolLoopOptions) {
    this.#o = o;
  }

  start(): void {
    if (this.#o.intervalMs <= 0) return;
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.();
  }

  /** One planning step (public for tests). Returns the loads it sent. */
  tick(): { providerId: string; model: string }[] {
    const { registry, directory, clock, demand, health, catalog, schedulerOptions } = this.#o;
    const now = clock.nowMs();
    const plan = planWarmPool(registry.view(), demand.snapshot(now), now, {
      scheduler: schedulerOptions,
      catalog,
      health,
      lastLoadAtMs: this.#lastLoadAtMs,
      ...(this.#o.poolsOf ? { poolsOf: this.#o.poolsOf } : {}),
    });
    for (const { providerId, model } of plan.load) {
      const ch = directory.channel(providerId);
      if (!ch) continue;
      ch.loadModel(model);
      registry.markPendingLoad(providerId, model, now);
      this.#lastLoadAtMs.set(providerId, now);
      count("routing.warm_pool_load", { model });
      this.#o.log.info("warm-pool load", { provider_id: providerId, model });
    }
    for (const [model, t] of plan.targets) {
      gauge("warm_pool.target", t.target, { model });
      gauge("warm_pool.warm", t.warm, { model });
    }
    return plan.load;
  }

  #schedule(): void {
    this.#timer = this.#o.clock.setTimeout(() => {
      if (this.#stopped) return;
      try {
        this.tick();
      } catch (e) {
        this.#o.log.error("warm-pool tick failed", { error: String(e) });
      }
      this.#schedule();
    }, this.#o.intervalMs);
  }
}
