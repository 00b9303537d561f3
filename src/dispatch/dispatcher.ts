/**
 * The request lifecycle entry point: `dispatch(job, sink, signal)` runs one request to its end (see
 * request-run.ts) and resolves with its outcome for billing. Owns the capacity queue and wakes it whenever
 * the registry reports that capacity may have appeared.
 */
import type { ProviderRegistry } from "../registry/provider-registry.js";
import type { PickResult, RouteRequest } from "../scheduler/types.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";
import type { CancelSignal } from "./cancel-signal.js";
import { CapacityQueue } from "./capacity-queue.js";
import { CoordinatorError } from "../errors/coordinator-error.js";
import { defaultDispatchOptions, type DispatchOptions } from "./dispatch-options.js";
import type { ProviderDirectory } from "./provider-channel.js";
import { RequestRun } from "./request-run.js";
import type { RunDeps } from "./run-deps.js";
import type { DispatchHealth, DispatchJob, DispatchResult, DispatchSink, ErrorClassifier } from "./types.js";

export interface DispatcherOptions {
  registry: ProviderRegistry;
  directory: ProviderDirectory;
  clock: Clock;
  health: DispatchHealth;
  classify: ErrorClassifier;
  /** The scheduler, bound to the registry view, health gates and the current time by the caller. */
  pick(req: RouteRequest): PickResult;
  options?: Partial<DispatchOptions>;
  /**
   * Operator log: each provider fault (error, stall, disconnect, first-token timeout, in-band error) at warn;
   * each failover, backup and cancel decision at info; each dispatch at debug. Fields: request_id, provider_id,
   * model, attempt, reason. Default: none.
   */
  log?: Logger;
  /** Every completed request's usage check (claim vs the coordinator's own count). */
  onUsageChecked?: RunDeps["onUsageChecked"];
}

export class Dispatcher {
  readonly queue: CapacityQueue;
  readonly options: DispatchOptions;
  /** Built once: a fresh object and closure per request showed up in the gateway benchmark's profile. */
  readonly #runDeps: RunDeps;
  #inflight = 0;

  constructor(o: DispatcherOptions) {
    this.options = { ...defaultDispatchOptions, ...o.options };
    this.queue = new CapacityQueue({
      clock: o.clock,
      limit: this.options.queueLimit,
      waitMs: this.options.queueWaitMs,
    });
    o.registry.onCapacity((model) => this.queue.wake(model));
    this.#runDeps = {
      registry: o.registry,
      directory: o.directory,
      clock: o.clock,
      health: o.health,
      classify: o.classify,
      options: this.options,
      pick: o.pick,
      waitForCapacity: (j, tryStart, s, maxWaitMs) => this.queue.wait(j.model, j.requestId, tryStart, s, maxWaitMs),
      ...(o.log ? { log: o.log } : {}),
      ...(o.onUsageChecked ? { onUsageChecked: o.onUsageChecked } : {}),
    };
  }

  /** Requests currently being dispatched or streamed. */
  get inflight(): number {
    return this.#inflight;
  }

  /** Shutdown: requests waiting for capacity, and any that would, get a retryable 503 now. */
  close(): void {
    this.queue.close(
      new CoordinatorError("unavailable", "the coordinator is shutting down; retry", { retryAfterS: 1 }),
    );
  }

  async dispatch(job: DispatchJob, sink: DispatchSink, signal: CancelSignal): Promise<DispatchResult> {
    this.#inflight++;
    let ran = false;
    try {
      const result = await new RequestRun(this.#runDeps, job, sink, signal).run();
      ran = result.attempts > 0;
      return result;
    } finally {
      this.#inflight--;
      // Capacity turned over only if the request held some: that rate is what Retry-After is computed from.
      if (ran) this.queue.recordCompletion(job.model);
    }
  }
}
