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
 * failover-book.ts (failover bounds, what a provider fault counts as), delta-forwarder.ts (held output, commit)
 * and run-settlement.ts (what each ending does, once chosen here).
 */
import { CoordinatorError } from "../errors/coordinator-error.js";
import { isContentBearing, type Delta, type ProviderEvent } from "../inference/types.js";
import { count, observe } from "../telemetry/metrics.js";
import { timerVerdict, type Attempt } from "./attempt.js";
import { AttemptControl } from "./attempt-control.js";
import { AttemptLauncher, type LaunchHooks } from "./attempt-launcher.js";
import type { CancelSignal } from "./cancel-signal.js";
import { DeltaForwarder } from "./delta-forwarder.js";
import { deterministicError } from "./dispatch-errors.js";
import { FailoverBook, type Failure, providerFailure } from "./failover-book.js";
import type { RunDeps } from "./run-deps.js";
import { RunLog } from "./run-log.js";
import { RunSettlement } from "./run-settlement.js";
import type { DispatchJob, DispatchResult, DispatchSink } from "./types.js";

/** Owner refusals (cluster mode) one request may take before one more counts as a capacity failure. */
export const MAX_OWNER_REFUSALS = 3;

/**
 * The most output (o200k tokens, the coordinator's own count) a leader may stream for a request whose Mac was asked
 * for `maxTokens`: eight times the budget plus 1,024. An honest Mac stops at max_tokens in its own tokenizer; o200k
 * counts its text at most ~1.3× that (Gemma on CJK), and tool-call arguments a server re-serializes with `\uXXXX`
 * escapes at up to ~6×. Past this the Mac is ignoring the budget, and every further chunk would cost the
 * coordinator tokenizer time and memory for output nobody pays for.
 */
export const OUTPUT_CEILING_FACTOR = 8;
export const OUTPUT_CEILING_SLACK_TOKENS = 1_024;
export function outputTokenCeiling(maxTokens: number): number {
  return maxTokens * OUTPUT_CEILING_FACTOR + OUTPUT_CEILING_SLACK_TOKENS;
}

export class RequestRun {
  readonly #d: RunDeps;
  readonly #job: DispatchJob;
  readonly #signal: CancelSignal;
  readonly #book: FailoverBook;
  readonly #out: DeltaForwarder;
  readonly #ctl: AttemptControl;
  readonly #log: RunLog;
  readonly #launcher: AttemptLauncher;
  readonly #settle: RunSettlement;
  readonly #startedAtMs: number;
  /** The leader: the attempt whose content is the answer (see the file comment). */
  #winner: Attempt | undefined;
  #leadAtMs = 0;
  #resolve!: (r: DispatchResult) => void;
  #result: DispatchResult | undefined;
  readonly #onAbort = () => this.#abort();
  readonly #onTimerFired = (a: Attempt) => this.#onTimer(a);
  /** See {@link outputTokenCeiling}: from the max_tokens the Mac was sent (traits may hold the context-clamped one). */
  readonly #outputCeiling: number;

  constructor(deps: RunDeps, job: DispatchJob, sink: DispatchSink, signal: CancelSignal) {
    this.#d = deps;
    this.#job = job;
    this.#signal = signal;
    this.#startedAtMs = deps.clock.nowMs();
    this.#outputCeiling = outputTokenCeiling(Math.max(job.traits.maxTokens, job.sentMaxTokens ?? 0));
    this.#book = new FailoverBook(this.#startedAtMs);
    this.#out = new DeltaForwarder(sink, deps.options.maxHeldPreamble);
    this.#ctl = new AttemptControl(deps, job);
    this.#log = new RunLog(deps.log, job, this.#book);
    const parts = { deps, job, sink, control: this.#ctl, log: this.#log, book: this.#book };
    this.#settle = new RunSettlement({ ...parts, startedAtMs: this.#startedAtMs });
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
      case "error":
      case "disconnected":
        this.#onFailure(a, providerFailure(e, this.#d.classify));
        return;
      case "refused":
        this.#onRefused(a, e.message);
        return;
    }
  }

  /**
   * The Mac's owner would not take it (cluster mode; its refusal refreshed our view of the Mac): pick again, as
   * if this attempt had never been made. Past {@link MAX_OWNER_REFUSALS} the refusal counts as a capacity failure,
   * so a view that keeps disagreeing with the owners cannot loop.
   */
  #onRefused(a: Attempt, message: string): void {
    const refusals = this.#book.withdraw(a);
    this.#ctl.withdraw(a, message);
    if (refusals > MAX_OWNER_REFUSALS) {
      const f = providerFailure({ kind: "error", statusCode: 503, reason: "capacity", message }, this.#d.classify);
      this.#book.recordFailure(a, f);
      this.#failOver(a, f, this.#d.clock.nowMs());
      return;
    }
    this.#log.line("info", "owner refused; picking again", a, { reason: message, refusals });
    if (this.#book.live() > 0) return;
    void this.#launcher.launch(false);
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
    if (a.output.tokens > this.#outputCeiling) {
      this.#overrun(a);
      return;
    }
    this.#ctl.arm(a, clock.nowMs() + options.idleTimeoutMs, this.#onTimerFired);
  }

  /**
   * The leader streamed past {@link outputTokenCeiling}: it is stopped, and the answer ends there as if it had
   * reached max_tokens (`length`), billed at the coordinator's own count (capped at max_tokens as always).
   */
  #overrun(a: Attempt): void {
    this.#log.line("warn", "provider streamed past max_tokens; stopped", a, {
      reason: "output_overrun",
      streamed_tokens: a.output.tokens,
      ceiling_tokens: this.#outputCeiling,
    });
    count("provider.output_overruns", { model: this.#job.model });
    this.#ctl.cancel(a, "output past max_tokens");
    if (!this.#out.committed) this.#out.commit(a.providerId); // a buffered answer is written now, as far as it got
    this.#finish(this.#settle.overrun(a));
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
    this.#finish(this.#settle.completed(a, e));
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
      this.#finish(this.#settle.failedAfterCommit(a, f, fields));
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
    this.#settle.logHangUp(w, committed);
    this.#cancelAll("client disconnected");
    this.#finish(this.#settle.hungUp(w, committed));
  }

  #failPreCommit(error: CoordinatorError): void {
    this.#cancelAll("request failed");
    this.#finish(this.#settle.failedPreCommit(error));
  }

  #finish(r: DispatchResult): void {
    if (this.#result) return;
    this.#result = r;
    this.#launcher.cancelBackup();
    for (const a of this.#book.all()) this.#ctl.release(a, r);
    this.#signal.removeEventListener("abort", this.#onAbort);
    this.#settle.observeEnd(r);
    this.#resolve(r);
  }
}
