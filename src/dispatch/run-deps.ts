/**
 * What one request's run needs from the dispatcher: the registry, the provider channels, the clock, health,
 * the scheduler and the capacity queue. Its own module because the run and the helpers it is made of
 * (attempt-control.ts, attempt-launcher.ts) all take it, and none of them should import the run itself.
 */
import type { ProviderRegistry } from "../registry/provider-registry.js";
import type { PickResult, RouteRequest } from "../scheduler/types.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";
import type { UsageCheck } from "./attempt-billing.js";
import type { CancelSignal } from "./cancel-signal.js";
import type { DispatchOptions } from "./dispatch-options.js";
import type { ProviderDirectory } from "./provider-channel.js";
import type { DispatchHealth, DispatchJob, ErrorClassifier } from "./types.js";

/** Everything a run needs from the dispatcher. */
export interface RunDeps {
  registry: ProviderRegistry;
  directory: ProviderDirectory;
  clock: Clock;
  health: DispatchHealth;
  classify: ErrorClassifier;
  options: DispatchOptions;
  pick(req: RouteRequest): PickResult;
  /**
   * Queues the request until `tryStart` (a scheduling step) succeeds when capacity may have appeared; throws a
   * CoordinatorError (429) when the queue is full or the wait runs out.
   */
  waitForCapacity(job: DispatchJob, tryStart: () => boolean, signal: CancelSignal, maxWaitMs?: number): Promise<void>;
  /** Operator log (faults at warn, failover/backup/cancel decisions at info, each dispatch at debug). */
  log?: Logger;
  /** Every completed request's usage check (the divergence tracker and its log line hang off this). */
  onUsageChecked?(c: UsageCheck): void;
}
