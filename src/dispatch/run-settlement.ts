/**
 * What each ending of a run does once {@link RequestRun} has chosen it: the completed leader billed, traced and
 * written; the in-band error after commit; the consumer's hang-up; the pre-commit failure; and the metrics every
 * ending reports. Each returns the run's {@link DispatchResult}. Kept apart from the run so the run reads as its
 * decisions (who leads, when to commit, whether to fail over) and the side effects of an outcome read in one place.
 */
import { CoordinatorError } from "../errors/coordinator-error.js";
import type { ProviderEvent } from "../inference/types.js";
import { count, observe } from "../telemetry/metrics.js";
import type { Attempt } from "./attempt.js";
import { billedUsage, consumedUsage, observeRates, servedBy } from "./attempt-billing.js";
import type { AttemptControl } from "./attempt-control.js";
import { isShed } from "./dispatch-errors.js";
import type { Failure, FailoverBook } from "./failover-book.js";
import type { RunDeps } from "./run-deps.js";
import type { RunLog } from "./run-log.js";
import type { DispatchJob, DispatchResult, DispatchSink } from "./types.js";

export interface SettlementParts {
  deps: RunDeps;
  job: DispatchJob;
  sink: DispatchSink;
  control: AttemptControl;
  log: RunLog;
  book: FailoverBook;
  startedAtMs: number;
}

export class RunSettlement {
  readonly #d: RunDeps;
  readonly #job: DispatchJob;
  readonly #sink: DispatchSink;
  readonly #ctl: AttemptControl;
  readonly #log: RunLog;
  readonly #book: FailoverBook;
  readonly #startedAtMs: number;

  constructor(p: SettlementParts) {
    this.#d = p.deps;
    this.#job = p.job;
    this.#sink = p.sink;
    this.#ctl = p.control;
    this.#log = p.log;
    this.#book = p.book;
    this.#startedAtMs = p.startedAtMs;
  }

  /** The leader completed (its answer already committed): bill it, trace it, finish the response, learn its rates. */
  completed(a: Attempt, e: ProviderEvent & { kind: "complete" }): DispatchResult {
    const usage = billedUsage(this.#job, a, e, this.#d.onUsageChecked);
    this.#ctl.trace.endAttempt(a.providerId, "success", undefined, undefined, {
      "gen_ai.usage.input_tokens": usage.promptTokens,
      "gen_ai.usage.output_tokens": usage.completionTokens,
      "gen_ai.response.finish_reasons": [e.finishReason],
    });
    this.#sink.finish(e.finishReason, usage);
    this.#ctl.recordOutcome(a, usage.completionTokens > 0 ? "success" : "incomplete", this.#d.clock.nowMs());
    count("inference.dispatches", { status: "success", model: this.#job.model });
    observeRates(this.#d.registry, this.#job, a, usage, this.#d.clock.nowMs());
    return {
      kind: "completed",
      ...servedBy(a),
      usage,
      finishReason: e.finishReason,
      attempts: this.#book.count,
    };
  }

  /**
   * The leader was stopped for streaming past its output ceiling (already cancelled): the answer ends as `length`,
   * billed at the coordinator's own count. There is no claim to defend (so no usage over-claim is booked), no rate
   * is learned from it, and the Mac's outcome is a fault.
   */
  overrun(a: Attempt): DispatchResult {
    const usage = consumedUsage(this.#job, a);
    this.#sink.finish("length", usage);
    this.#ctl.recordOutcome(a, "sickness", this.#d.clock.nowMs());
    count("inference.dispatches", { status: "overrun", model: this.#job.model });
    return { kind: "completed", ...servedBy(a), usage, finishReason: "length", attempts: this.#book.count };
  }

  /** The committed leader failed: the stream ends with an explicit in-band error; the partial output is owed. */
  failedAfterCommit(a: Attempt, f: Failure, fields: Record<string, unknown>): DispatchResult {
    this.#log.line("warn", "provider failed after commit; in-band error sent", a, fields);
    count("inference.in_band_error", { model: this.#job.model, provider_id: a.providerId });
    const err = new CoordinatorError("provider_failed", `the provider failed mid-stream: ${f.message}`, {
      wireCode: "provider_error",
    });
    this.#sink.failAfterCommit(err);
    return {
      kind: "failed",
      error: err,
      committed: true,
      attempts: this.#book.count,
      served: servedBy(a),
      partial: consumedUsage(this.#job, a),
    };
  }

  /** The consumer hung up: one line per attempt still running (logged before they are cancelled). */
  logHangUp(leader: Attempt | undefined, committed: boolean): void {
    let live = 0;
    for (const a of this.#book.all()) {
      if (a.phase === "done") continue;
      live++;
      this.#log.line("info", "attempt cancelled", a, {
        reason: "client_disconnected",
        committed,
        leading: a === leader,
      });
    }
    if (live === 0)
      this.#log.line("info", "request cancelled with no attempt running", undefined, { reason: "client_disconnected" });
  }

  /** The consumer hung up (attempts already cancelled): the leader, if any, is owed what it generated. */
  hungUp(leader: Attempt | undefined, committed: boolean): DispatchResult {
    count("routing.client_gone", { committed });
    if (!leader) return { kind: "cancelled", committed: false, attempts: this.#book.count };
    this.#ctl.recordOutcome(leader, "incomplete", this.#d.clock.nowMs());
    return {
      kind: "cancelled",
      committed,
      attempts: this.#book.count,
      served: servedBy(leader),
      partial: consumedUsage(this.#job, leader),
    };
  }

  /** Failed before commit (attempts already cancelled): counted as a shed or as a dispatch failure. */
  failedPreCommit(error: CoordinatorError): DispatchResult {
    // Load shedding (the queue was full or waited out before any attempt) is not a dispatch failure.
    if (isShed(error, this.#book.count)) count("inference.shed", { model: this.#job.model, reason: error.code });
    else count("inference.dispatches", { status: "failure", model: this.#job.model });
    return { kind: "failed", error, committed: false, attempts: this.#book.count };
  }

  /** Every ending but a shed reports the run's duration. */
  observeEnd(r: DispatchResult): void {
    if (!(r.kind === "failed" && isShed(r.error, r.attempts)))
      observe("inference.duration_ms", this.#d.clock.nowMs() - this.#startedAtMs, {
        model: this.#job.model,
        outcome: r.kind,
      });
  }
}
