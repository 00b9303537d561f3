/**
 * One request's attempt and failover bookkeeping: the attempts in dispatch order (one per provider), the providers
 * it may not use again, what the failures so far add up to, and the pre-content budget. The run asks it who may
 * be picked next and whether failing over is still allowed; it decides nothing on its own and does no I/O. Kept
 * apart from the run so the failover bounds (attempts, capacity retries, pre-content time) read in one place;
 * {@link providerFailure}, what a provider's fault event counts as, lives here beside the {@link Failure} it makes.
 */
import type { CoordinatorError } from "../errors/coordinator-error.js";
import type { ProviderErrorReason, ProviderEvent } from "../inference/types.js";
import type { ProviderId } from "../registry/types.js";
import type { RouteRequest } from "../scheduler/types.js";
import type { Attempt } from "./attempt.js";
import { exhaustedError } from "./dispatch-errors.js";
import type { DispatchOptions } from "./dispatch-options.js";
import type { DispatchJob, ErrorClass, ErrorClassifier } from "./types.js";

/** What went wrong with an attempt (the `reason` of its log line). */
export type Fault = "provider_error" | "disconnected" | "stalled" | "first_token_timeout";

/** One attempt's failure, as the run reports it. */
export interface Failure {
  fault: Fault;
  status: number;
  message: string;
  cls: ErrorClass;
  /** The provider refused to load the model (feeds the load cool-down). */
  loadRefused?: boolean;
  /** The provider's own error reason, for InferenceError. */
  providerReason?: ProviderErrorReason;
}

/** A provider's error or disconnect, as the failure it counts as (a disconnect is always sickness). */
export function providerFailure(
  e: ProviderEvent & { kind: "error" | "disconnected" },
  classify: ErrorClassifier,
): Failure {
  if (e.kind === "disconnected") return { fault: "disconnected", status: 502, message: e.message, cls: "sickness" };
  const loadRefused = e.reason === "insufficient_memory" || e.reason === "model_load_failed";
  return {
    fault: "provider_error",
    status: e.statusCode,
    message: e.message,
    cls: classify(e),
    loadRefused,
    providerReason: e.reason,
  };
}

type Bounds = Pick<DispatchOptions, "maxAttempts" | "maxCapacityRetries" | "maxPreContentMs">;

export class FailoverBook {
  readonly #attempts = new Map<ProviderId, Attempt>();
  readonly #excluded = new Set<ProviderId>();
  #count = 0;
  #capacityFailures = 0;
  #refusals = 0;
  #lastFailure: { status: number; message: string; capacity: boolean } | undefined;
  #avoidVersion: string | undefined;
  /**
   * Start of the pre-content budget: the run's start, moved forward by the time buffered leaders spent producing
   * content before failing (progress that was lost is not time spent waiting for a first token).
   */
  #budgetStartMs: number;

  constructor(startedAtMs: number) {
    this.#budgetStartMs = startedAtMs;
  }

  /** Attempts started so far. */
  get count(): number {
    return this.#count;
  }

  get capacityFailures(): number {
    return this.#capacityFailures;
  }

  /** Every attempt, in dispatch order. */
  all(): IterableIterator<Attempt> {
    return this.#attempts.values();
  }

  /** Records a started attempt (it becomes the next ordinal). */
  add(a: Attempt): void {
    this.#count++;
    this.#attempts.set(a.providerId, a);
  }

  /**
   * The Mac's owner refused the attempt (cluster mode): it never started, so it is forgotten (not counted, not
   * excluded) and the request is picked again on the refreshed view. Returns the refusals so far.
   */
  withdraw(a: Attempt): number {
    if (this.#attempts.get(a.providerId) === a) {
      this.#attempts.delete(a.providerId);
      this.#count--;
    }
    return ++this.#refusals;
  }

  /** Never pick this provider again for this request (it vanished before dispatch, or failed). */
  exclude(providerId: ProviderId): void {
    this.#excluded.add(providerId);
  }

  /** Attempts not yet done. */
  live(): number {
    let n = 0;
    for (const a of this.#attempts.values()) if (a.phase !== "done") n++;
    return n;
  }

  /** 1-based: attempts are kept in dispatch order, one per provider. */
  ordinal(a: Attempt): number {
    let n = 0;
    for (const x of this.#attempts.values()) {
      n++;
      if (x === a) break;
    }
    return n;
  }

  /** What the scheduler is asked for the next pick: the job's constraints minus every provider already used. */
  routeRequest(j: DispatchJob): RouteRequest {
    const req: RouteRequest = {
      requestId: j.requestId,
      model: j.model,
      traits: j.traits,
      shape: j.shape,
      exclude: this.#excludeSet(),
    };
    if (this.#avoidVersion !== undefined) req.avoidVersion = this.#avoidVersion;
    if (j.affinityKey !== undefined) req.affinityKey = j.affinityKey;
    if (j.pinnedAccountId !== undefined) req.pinnedAccountId = j.pinnedAccountId;
    if (j.allowedSerials !== undefined) req.allowedSerials = j.allowedSerials;
    if (j.callerAccountId !== undefined) req.callerAccountId = j.callerAccountId;
    if (j.avoidAccountId !== undefined) req.avoidAccountId = j.avoidAccountId;
    if (j.pools !== undefined) req.pools = { keys: j.pools, reassign: false };
    return req;
  }

  #excludeSet(): ReadonlySet<ProviderId> {
    if (this.#attempts.size === 0) return this.#excluded;
    return new Set([...this.#excluded, ...this.#attempts.keys()]);
  }

  /**
   * A pre-commit failure: the provider is excluded, and a server fault steers the next pick away from its
   * software version (capacity refusals say nothing about the version).
   */
  recordFailure(a: Attempt, f: Pick<Failure, "status" | "message" | "cls">): void {
    this.#excluded.add(a.providerId);
    this.#lastFailure = { status: f.status, message: f.message, capacity: f.cls === "capacity" };
    if (f.cls === "capacity") this.#capacityFailures++;
    if (f.status >= 500 && f.cls !== "capacity") this.#avoidVersion = a.version;
  }

  /** A buffered leader failed after `leadMs` of producing content: that time does not count as waiting. */
  creditLostLead(leadMs: number): void {
    this.#budgetStartMs += leadMs;
  }

  /** What is left of the pre-content budget (may be negative). */
  budgetLeftMs(nowMs: number, o: Bounds): number {
    return o.maxPreContentMs - (nowMs - this.#budgetStartMs);
  }

  /** No further failover: too many attempts, too many capacity refusals, or the pre-content budget is spent. */
  exhausted(nowMs: number, o: Bounds): boolean {
    return (
      this.#count >= o.maxAttempts ||
      this.#capacityFailures > o.maxCapacityRetries ||
      nowMs - this.#budgetStartMs > o.maxPreContentMs
    );
  }

  /** The error a request ends with when every attempt failed before content. */
  exhaustedError(model: string): CoordinatorError {
    return exhaustedError(model, this.#count, this.#lastFailure);
  }
}
