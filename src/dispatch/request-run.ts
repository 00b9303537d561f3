/**
 * One request's life in the dispatcher: pick → send → (race a backup) → first content picks the leader →
 * commit → stream → settle the outcome. Each provider attempt is an {@link Attempt} moving through the phases
 * described in attempt.ts.
 *
 * The response is committed (its first byte written) at the leader's first content when the consumer streams,
 * and only at the leader's completion when it asked for a buffered answer: until then the leader's output is
 * held here. Before commit every failure is invisible: the attempt is excluded, never billed, and another
 * provider is tried. After commit a failure ends the stream with an explicit in-band error.
 *
 * Races (both modes): the first attempt with content leads and every other attempt is cancelled at once, so a
 * backup never doubles the fleet's work past the first token. A buffered leader that fails before completing is
 * replaced by a fresh attempt on a provider this request has not used yet (the cancelled loser is not
 * re-dispatched: one attempt per provider per request), within the same failover bounds.
 *
 * Every provider fault is one `warn` log line, and every failover, backup and cancel decision one `info` line,
 * each with `request_id`, `provider_id`, `model`, `attempt` (1-based) and `reason`.
 *
 * This class holds the decisions (who leads, when to commit, whether to fail over, how the run ends); it is
 * served by attempt-launcher.ts (pick, queue, backup), attempt-control.ts (each attempt's side effects),
 * failover-book.ts (failover bounds), delta-forwarder.ts (held output, commit) and attempt-billing.ts.
 */
import { CoordinatorError } from "../errors/coordinator-error.js";
import { isContentBearing, type Delta, type ProviderEvent } from "../inference/types.js";
import { count, observe } from "../telemetry/metrics.js";
import { billedUsage, consumedUsage, observeRates, servedBy } from "./attempt-billing.js";
import { timerVerdict, type Attempt } from "./attempt.js";
import { AttemptControl } from "./attempt-control.js";
import { AttemptLauncher, type LaunchHooks } from "./attempt-launcher.js";
import type { CancelSignal } from "./cancel-signal.js";
import { DeltaForwarder } from "./delta-forwarder.js";
import { deterministicError, isShed } from "./dispatch-errors.js";
import { FailoverBook, type Failure } from "./failover-book.js";
import type { RunDeps } from "./run-deps.js";
import { RunLog } from "./run-log.js";
import type { DispatchJob, DispatchResult, DispatchSink } from "./types.js";

export class RequestRun {
  readonly #d: RunDeps;
  readonly #job: DispatchJob;
  readonly #sink: DispatchSink;
  readonly #signal: CancelSignal;
  readonly #book: FailoverBook;
  readonly #out: DeltaForwarder;
  readonly #ctl: AttemptControl;
  readonly #log: RunLog;
  readonly #launcher: AttemptLauncher;
  readonly #startedAtMs: number;
  /** The leader: the attempt whose content is the answer (see the file comment). */
  #winner: Attempt | undefined;
  #leadAtMs = 0;
  #resolve!: (r: DispatchResult) => void;
  #result: DispatchResult | undefined;
  readonly #onAbort = () => this.#abort();
  readonly #onTimerFired = (a: Attempt) => this.#onTimer(a);

  constructor(deps: RunDeps, job: DispatchJob, sink: DispatchSink, signal: CancelSignal) {
    this.#d = deps;
    this.#job = job;
    this.#sink = sink;
    this.#signal = signal;
    this.#startedAtMs = deps.clock.nowMs();
    this.#book = new FailoverBook(this.#startedAtMs);
    this.#out = new DeltaForwarder(sink, deps.options.maxHeldPreamble);
    this.#ctl = new AttemptControl(deps, job);
    this.#log = new RunLog(deps.log, job, this.#book);
    const hooks: LaunchHooks = {
      ended: () => this.#result !== undefined,
      leading: () => this.#winner !== undefined,
      fail: (e) => this.#failPreCommit(e),
      onEvent: (a, e) => this.#onEvent(a, e),
      onTimer: this.#onTimerFired,
    };
    this.#launcher = new AttemptLauncher({
      deps,
      job,
      signal,
      book: this.#book,
      control: this.#ctl,
      log: this.#log,
      hooks,
    });
  }

  run(): Promise<DispatchResult> {
    const done = new Promise<DispatchResult>((resolve) => (this.#resolve = resolve));
    if (this.#signal.aborted) {
      this.#finish({ kind: "cancelled", committed: false, attempts: 0 });
      return done;
    }
    this.#signal.addEventListener("abort", this.#onAbort, { once: true });
    void this.#launcher.launch(false);
    return done;
  }

  // ---- events -----------------------------------------------------------------------------------------

  #onEvent(a: Attempt, e: ProviderEvent): void {
    if (a.phase === "done" || this.#result) return;
    this.#ctl.started(a);
    switch (e.kind) {
      case "accepted":
        a.acceptedAtMs = this.#d.clock.nowMs();
        if (a.phase === "waiting") a.phase = "accepted";
        return;
      case "chunk":
        this.#onChunk(a, e.deltas);
        return;
      case "complete":
        this.#onComplete(a, e);
        return;
      case "error": {
        const loadRefused = e.reason === "insufficient_memory" || e.reason === "model_load_failed";
        this.#onFailure(a, {
          fault: "provider_error",
          status: e.statusCode,
          message: e.message,
          cls: this.#d.classify(e),
          loadRefused,
          providerReason: e.reason,
        });
        return;
      }
      case "disconnected":
        this.#onFailure(a, { fault: "disconnected", status: 502, message: e.message, cls: "sickness" });
        return;
    }
  }

  #onChunk(a: Attempt, deltas: Delta[]): void {
    const { clock, options } = this.#d;
    a.output.add(deltas);
    // When content arrived, not when it was committed (a buffered response commits only at its end).
    if (a.firstContentAtMs === undefined && deltas.some(isContentBearing)) a.firstContentAtMs = clock.nowMs();
    if (this.#winner === a) {
      this.#ctl.countOutput(a, deltas);
      this.#out.emit(deltas);
    } else if (this.#winner) {
      return; // a loser still talking: it has been cancelled
    } else if (!deltas.some(isContentBearing)) {
      // Boilerplate: hold it (bounded) and do not commit — the provider has not done the failure-prone work yet.
      a.preambleAtMs ??= clock.nowMs();
      if (a.phase === "waiting" || a.phase === "accepted") a.phase = "preamble";
      this.#out.holdPreamble(deltas);
      return;
    } else {
      this.#lead(a);
      this.#ctl.countOutput(a, deltas);
      this.#out.emitFirst(deltas);
    }
    this.#ctl.arm(a, clock.nowMs() + options.idleTimeoutMs, this.#onTimerFired);
  }

  /**
   * First content: this attempt leads; every other attempt is cancelled and never billed. A streaming response
   * is committed here; a buffered one at completion (see the file comment).
   */
  #lead(a: Attempt): void {
    this.#winner = a;
    this.#leadAtMs = this.#d.clock.nowMs();
    a.phase = "streaming";
    this.#launcher.cancelBackup();
    for (const other of this.#book.all()) {
      if (other === a || other.phase === "done") continue;
      this.#log.line("info", "attempt cancelled", other, { reason: "lost_race", winner_provider_id: a.providerId });
      this.#ctl.cancel(other, "lost the race to another provider");
    }
    if (a.backup) count("inference.speculative_win", { model: this.#job.model });
    this.#ctl.trace.event(a.providerId, "first_token");
    this.#job.onFirstToken?.();
    observe("inference.ttft_ms", this.#d.clock.nowMs() - this.#startedAtMs, { model: this.#job.model });
    if (this.#job.traits.stream) this.#out.commit(a.providerId);
  }

  #onComplete(a: Attempt, e: ProviderEvent & { kind: "complete" }): void {
    if (this.#winner && this.#winner !== a) return;
    if (!this.#winner) {
      // A complete with no content at all (e.g. an empty answer): still a valid response.
      this.#lead(a);
      this.#out.emitPreamble();
    }
    if (!this.#out.committed) this.#out.commit(a.providerId); // a buffered answer is written now, in one piece
    a.phase = "done";
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
    this.#finish({
      kind: "completed",
      ...servedBy(a),
      usage,
      finishReason: e.finishReason,
      attempts: this.#book.count,
    });
  }

  #onTimer(a: Attempt): void {
    if (a.phase === "done" || this.#result) return;
    const v = timerVerdict(a, a === this.#winner, this.#d.clock.nowMs(), this.#d.options);
    if (v.kind === "extend") {
      this.#ctl.arm(a, v.untilMs, this.#onTimerFired);
      return;
    }
    const stalled = v.kind === "stalled";
    const message = stalled ? "the provider stalled mid-stream" : "no content before the first-token deadline";
    if (!stalled)
      count("inference.dispatches", { status: "timeout", model: this.#job.model, provider_id: a.providerId });
    this.#ctl.trace.endAttempt(a.providerId, "failed", v.kind, new CoordinatorError("timeout", message));
    this.#ctl.cancel(a, stalled ? "stalled" : "no content before the deadline");
    this.#onFailure(a, { fault: v.kind, status: 504, message, cls: "sickness" });
  }

  // ---- failures ---------------------------------------------------------------------------------------

  #onFailure(a: Attempt, f: Failure): void {
    const now = this.#d.clock.nowMs();
    this.#ctl.fail(a, f, now);
    const leading = this.#winner === a;
    const fields = {
      reason: f.fault,
      status: f.status,
      message: f.message,
      class: f.cls,
      ...(f.providerReason ? { provider_reason: f.providerReason } : {}),
      ...(leading ? { content_chars: a.contentChars } : {}),
    };
    if (leading && this.#out.committed) {
      this.#log.line("warn", "provider failed after commit; in-band error sent", a, fields);
      count("inference.in_band_error", { model: this.#job.model, provider_id: a.providerId });
      const err = new CoordinatorError("provider_failed", `the provider failed mid-stream: ${f.message}`, {
        wireCode: "provider_error",
      });
      this.#sink.failAfterCommit(err);
      this.#finish({
        kind: "failed",
        error: err,
        committed: true,
        attempts: this.#book.count,
        served: servedBy(a),
        partial: consumedUsage(this.#job, a),
      });
      return;
    }
    this.#log.line("warn", "provider failed before commit", a, fields);
    if (leading) {
      // A buffered answer not written yet: its output is dropped, unbilled, and the request fails over as if no
      // content had come. The time it spent producing that content does not count against the pre-content budget.
      this.#winner = undefined;
      this.#out.dropPending();
      this.#book.creditLostLead(now - this.#leadAtMs);
    }
    this.#book.recordFailure(a, f);
    this.#failOver(a, f, now);
  }

  /** A pre-commit failure, already booked: stop, leave it to a racing attempt, or try another provider. */
  #failOver(a: Attempt, f: Failure, now: number): void {
    const { cls } = f;
    if (cls === "deterministic" || cls === "client_error") {
      // Retrying elsewhere cannot help (e.g. the prompt exceeds the context): stop at once.
      this.#log.line("info", "not retrying: the request itself cannot be served", a, { reason: f.fault, class: cls });
      this.#cancelAll("request cannot be served");
      this.#failPreCommit(
        cls === "deterministic" ? deterministicError(f.message) : new CoordinatorError("invalid_request", f.message),
      );
      return;
    }
    count("inference.dispatches", {
      status: "retry_precontent",
      model: this.#job.model,
      provider_id: a.providerId,
      reason: f.fault,
    });
    if (this.#book.live() > 0) {
      this.#log.line("info", "not failing over: a racing attempt is still running", a, { reason: f.fault });
      return;
    }
    if (this.#book.exhausted(now, this.#d.options)) {
      this.#log.line("info", "failover exhausted; the request fails", a, {
        reason: f.fault,
        attempts: this.#book.count,
        capacity_failures: this.#book.capacityFailures,
      });
      this.#failPreCommit(this.#book.exhaustedError(this.#job.model));
      return;
    }
    this.#log.line("info", "failing over", a, { reason: f.fault });
    void this.#launcher.launch(false);
  }

  // ---- ending -----------------------------------------------------------------------------------------

  #cancelAll(reason: string): void {
    for (const a of this.#book.all()) if (a.phase !== "done") this.#ctl.cancel(a, reason);
  }

  /**
   * The consumer hung up. Streaming or buffered alike, it pays for what the leading provider generated until then
   * (the coordinator's own count, not a provider claim): the work was done at its request, and a buffered
   * consumer must not get generation for free by hanging up just before the answer. Before any content: nothing.
   */
  #abort(): void {
    if (this.#result) return;
    const w = this.#winner;
    const committed = this.#out.committed;
    let live = 0;
    for (const a of this.#book.all()) {
      if (a.phase === "done") continue;
      live++;
      this.#log.line("info", "attempt cancelled", a, { reason: "client_disconnected", committed, leading: a === w });
    }
    if (live === 0)
      this.#log.line("info", "request cancelled with no attempt running", undefined, { reason: "client_disconnected" });
    this.#cancelAll("client disconnected");
    count("routing.client_gone", { committed });
    if (w) {
      this.#ctl.recordOutcome(w, "incomplete", this.#d.clock.nowMs());
      this.#finish({
        kind: "cancelled",
        committed,
        attempts: this.#book.count,
        served: servedBy(w),
        partial: consumedUsage(this.#job, w),
      });
    } else {
      this.#finish({ kind: "cancelled", committed: false, attempts: this.#book.count });
    }
  }

  #failPreCommit(error: CoordinatorError): void {
    this.#cancelAll("request failed");
    // Load shedding (the queue was full or waited out before any attempt) is not a dispatch failure.
    if (isShed(error, this.#book.count)) count("inference.shed", { model: this.#job.model, reason: error.code });
    else count("inference.dispatches", { status: "failure", model: this.#job.model });
    this.#finish({ kind: "failed", error, committed: false, attempts: this.#book.count });
  }

  #finish(r: DispatchResult): void {
    if (this.#result) return;
    this.#result = r;
    this.#launcher.cancelBackup();
    for (const a of this.#book.all()) this.#ctl.release(a, r);
    this.#signal.removeEventListener("abort", this.#onAbort);
    if (!(r.kind === "failed" && isShed(r.error, r.attempts)))
      observe("inference.duration_ms", this.#d.clock.nowMs() - this.#startedAtMs, {
        model: this.#job.model,
        outcome: r.kind,
      });
    this.#resolve(r);
  }
}
