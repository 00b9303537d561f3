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
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { CoordinatorError } from "../errors/coordinator-error.js";
import { isContentBearing, type Delta, type ProviderErrorReason, type ProviderEvent, type Usage } from "../inference/types.js";
import type { ProviderRegistry } from "../registry/provider-registry.js";
import type { ProviderId } from "../registry/types.js";
import type { PickResult, RouteRequest } from "../scheduler/types.js";
import { count, observe } from "../telemetry/metrics.js";
import { endSpan, SpanKind, startSpan, traceHeaders, type Span } from "../telemetry/tracing.js";
import type { Cancel, Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";
import type { CancelSignal } from "./cancel-signal.js";
import { defendUsage, type DefendedUsage } from "../usage/defend-usage.js";
import { StreamedOutput } from "../usage/streamed-output.js";
import { charsToTokens, clampUsage, partialUsage, timerVerdict, type Attempt } from "./attempt.js";
import { deterministicError, exhaustedError, rejectError } from "./dispatch-errors.js";
import { firstTokenDeadlineMs, type DispatchOptions } from "./dispatch-options.js";
import type { ProviderDirectory } from "./provider-channel.js";
import type { DispatchHealth, DispatchJob, DispatchResult, DispatchSink, ErrorClass, ErrorClassifier } from "./types.js";

/** What went wrong with an attempt (the `reason` of its log line). */
type Fault = "provider_error" | "disconnected" | "stalled" | "first_token_timeout";

interface Failure {
  fault: Fault;
  status: number;
  message: string;
  cls: ErrorClass;
  /** The provider refused to load the model (feeds the load cool-down). */
  loadRefused?: boolean;
  /** The provider's own error reason, for InferenceError. */
  providerReason?: ProviderErrorReason;
}

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

/** One completed request's usage check. */
export interface UsageCheck {
  providerId: ProviderId;
  requestId: string;
  model: string;
  defended: DefendedUsage;
}

export class RequestRun {
  readonly #d: RunDeps;
  readonly #job: DispatchJob;
  readonly #sink: DispatchSink;
  readonly #signal: CancelSignal;
  readonly #attempts = new Map<ProviderId, Attempt>();
  readonly #excluded = new Set<ProviderId>();
  readonly #held: Delta[] = [];
  /** Each attempt's open span (one attempt per provider). */
  readonly #spans = new Map<ProviderId, Span>();
  /** A "queue" decision has been traced (a queued request is re-picked on every capacity change: trace it once). */
  #queueTraced = false;
  readonly #startedAtMs: number;
  /** The leader: the attempt whose content is the answer (see the file comment). */
  #winner: Attempt | undefined;
  /** The sink has been committed (a byte may have reached the consumer): failures are in-band from here on. */
  #committed = false;
  /** The leader's output, held until commit (a buffered answer). */
  #pending: Delta[] = [];
  #leadAtMs = 0;
  /**
   * Start of the pre-content budget: the run's start, moved forward by the time buffered leaders spent producing
   * content before failing (progress that was lost is not time spent waiting for a first token).
   */
  #budgetStartMs: number;
  #attemptCount = 0;
  /** An attempt has been sent to a provider ({@link DispatchJob.onDispatched} has been called). */
  #dispatched = false;
  #capacityFailures = 0;
  #lastFailure: { status: number; message: string; capacity: boolean } | undefined;
  #avoidVersion: string | undefined;
  #speculativeTimer: Cancel | undefined;
  #speculated = false;
  #resolve!: (r: DispatchResult) => void;
  #result: DispatchResult | undefined;
  readonly #onAbort = () => this.#abort();

  constructor(deps: RunDeps, job: DispatchJob, sink: DispatchSink, signal: CancelSignal) {
    this.#d = deps;
    this.#job = job;
    this.#sink = sink;
    this.#signal = signal;
    this.#startedAtMs = deps.clock.nowMs();
    this.#budgetStartMs = this.#startedAtMs;
  }

  run(): Promise<DispatchResult> {
    const done = new Promise<DispatchResult>((resolve) => (this.#resolve = resolve));
    if (this.#signal.aborted) {
      this.#finish({ kind: "cancelled", committed: false, attempts: 0 });
      return done;
    }
    this.#signal.addEventListener("abort", this.#onAbort, { once: true });
    void this.#launch(false);
    return done;
  }

  // ---- launching attempts -----------------------------------------------------------------------------

  #routeRequest(): RouteRequest {
    const j = this.#job;
    const req: RouteRequest = { requestId: j.requestId, model: j.model, traits: j.traits, shape: j.shape, exclude: this.#excludeSet() };
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
   * One scheduling step: pick and dispatch. Returns "started", "failed" (the run ended), or "queue" when capable
   * providers exist but none has room (or a backup found nobody).
   */
  #tryStart(isBackup: boolean): "started" | "failed" | "queue" {
    if (this.#result) return "failed";
    const decision = this.#d.pick(this.#routeRequest());
    this.#traceDecision(decision, isBackup);
    if (decision.kind === "picked") {
      this.#startAttempt(decision.providerId, isBackup, decision.reservedTokens);
      return "started";
    }
    if (isBackup || this.#liveAttempts() > 0) return "queue"; // a backup is opportunistic; someone is still working
    if (decision.kind === "reject") {
      // After attempts, "nobody left" means the failures exhausted the fleet: report what failed.
      this.#failPreCommit(this.#attemptCount > 0 ? this.#exhaustedError() : rejectError(decision));
      return "failed";
    }
    return "queue";
  }

  /** Dispatches now, or waits in the capacity queue until a pick succeeds (429 when full or too long). */
  async #launch(isBackup: boolean): Promise<void> {
    if (this.#tryStart(isBackup) !== "queue" || isBackup || this.#liveAttempts() > 0) return;
    // A failover waits only for what is left of its pre-content budget.
    const left = this.#d.options.maxPreContentMs - (this.#d.clock.nowMs() - this.#budgetStartMs);
    if (this.#attemptCount > 0 && left <= 0) {
      this.#failPreCommit(this.#exhaustedError());
      return;
    }
    try {
      // Bound: the queue retries from whichever request freed capacity; the attempt belongs to this one's log scope.
      await this.#d.waitForCapacity(this.#job, AsyncLocalStorage.bind(() => this.#tryStart(false) !== "queue"), this.#signal, this.#attemptCount > 0 ? left : undefined);
    } catch (e) {
      if (!this.#result) this.#failPreCommit(this.#attemptCount > 0 ? this.#exhaustedError() : CoordinatorError.from(e));
    }
  }

  #startAttempt(providerId: ProviderId, backup: boolean, reservedTokens: number): void {
    const { registry, directory, clock, options } = this.#d;
    const rec = registry.get(providerId);
    const channel = directory.channel(providerId);
    const now = clock.nowMs();
    if (!rec || !channel) {
      this.#excluded.add(providerId);
      if (!backup) void this.#launch(false);
      return;
    }
    this.#attemptCount++;
    const deadline = firstTokenDeadlineMs(options, this.#job.traits.estimatedPromptTokens);
    const a: Attempt = {
      providerId,
      accountId: rec.accountId,
      version: rec.version,
      backup,
      phase: "waiting",
      startedAtMs: now,
      deadlineAtMs: now + deadline,
      contentChars: 0,
      output: new StreamedOutput(),
    };
    this.#attempts.set(providerId, a);
    const prompt = this.#job.traits.estimatedPromptTokens;
    registry.addInflight(providerId, {
      requestId: this.#job.requestId,
      model: this.#job.model,
      reservedTokens,
      usedTokens: prompt,
      remainingOutputTokens: Math.max(0, reservedTokens - prompt),
      // Lets the scheduler count this prompt as prefill work ahead on the Mac until a token streams.
      promptTokens: prompt,
      startedAtMs: now,
      seenByProvider: false,
    });
    if (!rec.slots.some((s) => s.model === this.#job.model && (s.state === "running" || s.state === "idle"))) {
      registry.markPendingLoad(providerId, this.#job.model, now);
    }
    if (backup) {
      const primary = [...this.#attempts.values()].find((x) => x !== a && x.phase !== "done");
      this.#log("info", "speculative backup dispatched", a, { reason: "slow_first_token", ...(primary ? { primary_provider_id: primary.providerId } : {}) });
    } else {
      this.#log("debug", "inference dispatched", a, { reason: this.#attemptCount > 1 ? "failover" : "first_pick" });
    }
    const span = this.#job.trace
      ? startSpan(`chat ${this.#job.model}`, this.#job.trace, {
          "gen_ai.operation.name": "chat",
          "gen_ai.request.model": this.#job.model,
          "coordinator.provider.id": providerId,
          "coordinator.attempt": this.#attemptCount,
          "coordinator.attempt.backup": backup,
          "coordinator.dispatch.reason": backup ? "slow_first_token" : this.#attemptCount > 1 ? "failover" : "first_pick",
        }, SpanKind.CLIENT)
      : undefined;
    if (span) this.#spans.set(providerId, span);
    const sent = channel.dispatch(
      { requestId: this.#job.requestId, model: this.#job.model, bodyJson: this.#job.bodyJson, traits: this.#job.traits, ...(span ? { traceContext: traceHeaders(span) } : {}) },
      // Events arrive on the provider's stream: bound here, their log lines carry this request's ids.
      AsyncLocalStorage.bind((e: ProviderEvent) => this.#onEvent(a, e)),
    );
    if (!sent) {
      this.#onEvent(a, { kind: "disconnected", message: "provider session closed" });
      return;
    }
    if (!this.#dispatched) {
      this.#dispatched = true;
      this.#job.onDispatched?.();
    }
    this.#arm(a, a.deadlineAtMs);
    if (!backup && !this.#speculated) this.#armSpeculative(deadline);
  }

  /** At a fraction of the first-token deadline, race a backup on another provider. */
  #armSpeculative(deadlineMs: number): void {
    const f = this.#d.options.speculativeFraction;
    if (f <= 0 || this.#job.pinnedAccountId !== undefined) return;
    this.#speculated = true;
    this.#speculativeTimer = this.#d.clock.setTimeout(() => {
      if (this.#result || this.#winner || this.#liveAttempts() !== 1) return;
      const before = this.#attemptCount;
      void this.#launch(true).then(() => {
        if (this.#attemptCount > before) count("inference.speculative_dispatch", { model: this.#job.model });
      });
    }, Math.floor(deadlineMs * f));
  }

  #arm(a: Attempt, atMs: number): void {
    a.timer?.();
    a.timer = this.#d.clock.setTimeout(() => this.#onTimer(a), Math.max(0, atMs - this.#d.clock.nowMs()));
  }

  #liveAttempts(): number {
    let n = 0;
    for (const a of this.#attempts.values()) if (a.phase !== "done") n++;
    return n;
  }

  // ---- events -----------------------------------------------------------------------------------------

  #onEvent(a: Attempt, e: ProviderEvent): void {
    if (a.phase === "done" || this.#result) return;
    if (!a.started) {
      a.started = true;
      this.#d.registry.markStarted(a.providerId, this.#job.requestId);
    }
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
        this.#onFailure(a, {
          fault: "provider_error",
          status: e.statusCode,
          message: e.message,
          cls: this.#d.classify(e),
          loadRefused: e.reason === "insufficient_memory" || e.reason === "model_load_failed",
          providerReason: e.reason,
        });
        return;
      case "disconnected":
        this.#onFailure(a, { fault: "disconnected", status: 502, message: e.message, cls: "sickness" });
        return;
    }
  }

  #onChunk(a: Attempt, deltas: Delta[]): void {
    const { registry, clock } = this.#d;
    a.output.add(deltas);
    // When content arrived, not when it was committed (a buffered response commits only at its end).
    if (a.firstContentAtMs === undefined && deltas.some(isContentBearing)) a.firstContentAtMs = clock.nowMs();
    let chars = 0;
    for (const d of deltas) chars += d.kind === "content" || d.kind === "reasoning" ? d.text.length : d.kind === "tool_call" ? (d.arguments?.length ?? 0) : 0;
    if (this.#winner === a) {
      a.contentChars += chars;
      registry.addUsedTokens(a.providerId, this.#job.requestId, charsToTokens(chars));
      this.#emit(deltas);
      this.#arm(a, clock.nowMs() + this.#d.options.idleTimeoutMs);
      return;
    }
    if (this.#winner) return; // a loser still talking: it has been cancelled
    if (!deltas.some(isContentBearing)) {
      // Boilerplate: hold it (bounded) and do not commit — the provider has not done the failure-prone work yet.
      a.preambleAtMs ??= clock.nowMs();
      if (a.phase === "waiting" || a.phase === "accepted") a.phase = "preamble";
      for (const d of deltas) if (this.#held.length < this.#d.options.maxHeldPreamble && !this.#held.some((h) => h.kind === "role")) this.#held.push(d);
      return;
    }
    this.#lead(a);
    a.contentChars += chars;
    registry.addUsedTokens(a.providerId, this.#job.requestId, charsToTokens(chars));
    const replay = this.#held.length > 0 && !deltas.some((d) => d.kind === "role") ? [...this.#held, ...deltas] : deltas;
    this.#emit(replay);
    this.#arm(a, clock.nowMs() + this.#d.options.idleTimeoutMs);
  }

  /**
   * First content: this attempt leads; every other attempt is cancelled and never billed. A streaming response
   * is committed here; a buffered one at completion (see the file comment).
   */
  #lead(a: Attempt): void {
    this.#winner = a;
    this.#leadAtMs = this.#d.clock.nowMs();
    a.phase = "streaming";
    this.#speculativeTimer?.();
    for (const other of this.#attempts.values()) {
      if (other === a || other.phase === "done") continue;
      this.#log("info", "attempt cancelled", other, { reason: "lost_race", winner_provider_id: a.providerId });
      this.#cancelAttempt(other, "lost the race to another provider");
    }
    if (a.backup) count("inference.speculative_win", { model: this.#job.model });
    this.#spans.get(a.providerId)?.addEvent("first_token");
    this.#job.onFirstToken?.();
    observe("inference.ttft_ms", this.#d.clock.nowMs() - this.#startedAtMs, { model: this.#job.model });
    if (this.#job.traits.stream) this.#commitResponse();
  }

  /** The point of no return: the sink writes its head, then whatever output was held for it. */
  #commitResponse(): void {
    this.#committed = true;
    this.#sink.commit(this.#winner!.providerId);
    if (this.#pending.length > 0) this.#sink.deltas(this.#pending);
    this.#pending = [];
  }

  /** The leader's output: to the sink once committed, held until then. */
  #emit(ds: readonly Delta[]): void {
    if (this.#committed) this.#sink.deltas(ds);
    else for (const d of ds) this.#pending.push(d);
  }

  #onComplete(a: Attempt, e: ProviderEvent & { kind: "complete" }): void {
    if (this.#winner && this.#winner !== a) return;
    if (!this.#winner) {
      // A complete with no content at all (e.g. an empty answer): still a valid response.
      this.#lead(a);
      if (this.#held.length > 0) this.#emit(this.#held);
    }
    if (!this.#committed) this.#commitResponse(); // a buffered answer is written now, in one piece
    a.phase = "done";
    const usage = this.#billedUsage(a, e);
    this.#endAttemptSpan(a, "success", undefined, undefined, {
      "gen_ai.usage.input_tokens": usage.promptTokens,
      "gen_ai.usage.output_tokens": usage.completionTokens,
      "gen_ai.response.finish_reasons": [e.finishReason],
    });
    this.#sink.finish(e.finishReason, usage);
    this.#d.health.recordOutcome({
      providerId: a.providerId,
      model: this.#job.model,
      shape: this.#job.shape,
      kind: usage.completionTokens > 0 ? "success" : "incomplete",
      nowMs: this.#d.clock.nowMs(),
    });
    count("inference.dispatches", { status: "success", model: this.#job.model });
    this.#observeRates(a, usage);
    this.#finish({
      kind: "completed",
      providerId: a.providerId,
      providerAccountId: a.accountId,
      usage,
      finishReason: e.finishReason,
      attempts: this.#attemptCount,
    });
  }

  #onFailure(a: Attempt, f: Failure): void {
    const { health, clock } = this.#d;
    const { status, message, cls } = f;
    const now = clock.nowMs();
    a.phase = "done";
    a.timer?.();
    const outcome = cls === "deterministic" ? "client_error" : cls;
    health.recordOutcome({ providerId: a.providerId, model: this.#job.model, shape: this.#job.shape, kind: outcome, nowMs: now });
    if (f.loadRefused) health.recordLoadRefusal(a.providerId, this.#job.model, now);
    this.#d.registry.removeInflight(a.providerId, this.#job.requestId);
    const leading = this.#winner === a;
    const fields = { reason: f.fault, status, message, class: cls, ...(f.providerReason ? { provider_reason: f.providerReason } : {}), ...(leading ? { content_chars: a.contentChars } : {}) };
    this.#endAttemptSpan(a, "failed", f.fault, new CoordinatorError("provider_failed", message), { "coordinator.error.class": cls, "coordinator.provider.status": status, ...(f.providerReason ? { "coordinator.provider.reason": f.providerReason } : {}) });

    if (leading && this.#committed) {
      this.#log("warn", "provider failed after commit; in-band error sent", a, fields);
      count("inference.in_band_error", { model: this.#job.model, provider_id: a.providerId });
      const err = new CoordinatorError("provider_failed", `the provider failed mid-stream: ${message}`, { wireCode: "provider_error" });
      this.#sink.failAfterCommit(err);
      this.#finish({ kind: "failed", error: err, committed: true, attempts: this.#attemptCount, served: served(a), partial: this.#partial(a) });
      return;
    }
    this.#log("warn", "provider failed before commit", a, fields);
    if (leading) {
      // A buffered answer not written yet: its output is dropped, unbilled, and the request fails over as if no
      // content had come. The time it spent producing that content does not count against the pre-content budget.
      this.#winner = undefined;
      this.#pending = [];
      this.#budgetStartMs += now - this.#leadAtMs;
    }

    this.#excluded.add(a.providerId);
    this.#lastFailure = { status, message, capacity: cls === "capacity" };
    if (cls === "capacity") this.#capacityFailures++;
    if (status >= 500 && cls !== "capacity") this.#avoidVersion = a.version;
    if (cls === "deterministic" || cls === "client_error") {
      // Retrying elsewhere cannot help (e.g. the prompt exceeds the context): stop at once.
      this.#log("info", "not retrying: the request itself cannot be served", a, { reason: f.fault, class: cls });
      this.#cancelAll("request cannot be served");
      this.#failPreCommit(cls === "deterministic" ? deterministicError(message) : new CoordinatorError("invalid_request", message));
      return;
    }
    count("inference.dispatches", { status: "retry_precontent", model: this.#job.model, provider_id: a.providerId, reason: f.fault });
    if (this.#liveAttempts() > 0) {
      this.#log("info", "not failing over: a racing attempt is still running", a, { reason: f.fault });
      return;
    }
    if (this.#attemptCount >= this.#d.options.maxAttempts || this.#capacityFailures > this.#d.options.maxCapacityRetries || now - this.#budgetStartMs > this.#d.options.maxPreContentMs) {
      this.#log("info", "failover exhausted; the request fails", a, { reason: f.fault, attempts: this.#attemptCount, capacity_failures: this.#capacityFailures });
      this.#failPreCommit(this.#exhaustedError());
      return;
    }
    this.#log("info", "failing over", a, { reason: f.fault });
    void this.#launch(false);
  }

  #onTimer(a: Attempt): void {
    if (a.phase === "done" || this.#result) return;
    const v = timerVerdict(a, a === this.#winner, this.#d.clock.nowMs(), this.#d.options);
    switch (v.kind) {
      case "extend":
        this.#arm(a, v.untilMs);
        return;
      case "stalled":
        this.#endAttemptSpan(a, "failed", "stalled", new CoordinatorError("timeout", "the provider stalled mid-stream"));
        this.#cancelAttempt(a, "stalled");
        this.#onFailure(a, { fault: "stalled", status: 504, message: "the provider stalled mid-stream", cls: "sickness" });
        return;
      case "first_token_timeout":
        count("inference.dispatches", { status: "timeout", model: this.#job.model, provider_id: a.providerId });
        this.#endAttemptSpan(a, "failed", "first_token_timeout", new CoordinatorError("timeout", "no content before the first-token deadline"));
        this.#cancelAttempt(a, "no content before the deadline");
        this.#onFailure(a, { fault: "first_token_timeout", status: 504, message: "no content before the first-token deadline", cls: "sickness" });
        return;
    }
  }

  // ---- ending -----------------------------------------------------------------------------------------

  #cancelAttempt(a: Attempt, reason: string): void {
    if (a.phase !== "done") a.phase = "done";
    this.#endAttemptSpan(a, "cancelled", reason);
    a.timer?.();
    this.#d.directory.channel(a.providerId)?.cancel(this.#job.requestId, reason);
    this.#d.registry.removeInflight(a.providerId, this.#job.requestId);
  }

  #cancelAll(reason: string): void {
    for (const a of this.#attempts.values()) if (a.phase !== "done") this.#cancelAttempt(a, reason);
  }

  /**
   * The consumer hung up. Streaming or buffered alike, it pays for what the leading provider generated until then
   * (the coordinator's own count, not a provider claim): the work was done at its request, and a buffered
   * consumer must not get generation for free by hanging up just before the answer. Before any content: nothing.
   */
  #abort(): void {
    if (this.#result) return;
    const w = this.#winner;
    let live = 0;
    for (const a of this.#attempts.values()) {
      if (a.phase === "done") continue;
      live++;
      this.#log("info", "attempt cancelled", a, { reason: "client_disconnected", committed: this.#committed, leading: a === w });
    }
    if (live === 0) this.#log("info", "request cancelled with no attempt running", undefined, { reason: "client_disconnected" });
    this.#cancelAll("client disconnected");
    count("routing.client_gone", { committed: this.#committed });
    if (w) {
      this.#d.health.recordOutcome({ providerId: w.providerId, model: this.#job.model, shape: this.#job.shape, kind: "incomplete", nowMs: this.#d.clock.nowMs() });
      this.#finish({ kind: "cancelled", committed: this.#committed, attempts: this.#attemptCount, served: served(w), partial: this.#partial(w) });
    } else {
      this.#finish({ kind: "cancelled", committed: false, attempts: this.#attemptCount });
    }
  }

  #failPreCommit(error: CoordinatorError): void {
    this.#cancelAll("request failed");
    // Load shedding (the queue was full or waited out before any attempt) is not a dispatch failure.
    if (isShed(error, this.#attemptCount)) count("inference.shed", { model: this.#job.model, reason: error.code });
    else count("inference.dispatches", { status: "failure", model: this.#job.model });
    this.#finish({ kind: "failed", error, committed: false, attempts: this.#attemptCount });
  }

  #exhaustedError(): CoordinatorError {
    return exhaustedError(this.#job.model, this.#attemptCount, this.#lastFailure);
  }

  #partial(a: Attempt): Usage {
    const check = this.#job.usageCheck;
    if (!check) return partialUsage(a, this.#job.traits.estimatedPromptTokens);
    const completion = Math.min(this.#job.traits.maxTokens, Math.ceil(a.output.tokens * check.family.scale));
    return { promptTokens: check.promptTokens(), completionTokens: completion, reasoningTokens: 0 };
  }

  /**
   * Feeds the provider's measured prefill and decode rates (the scheduler trusts them over its claims). Our own
   * prompt estimate, not the provider's usage, and completion capped by what was actually streamed.
   */
  #observeRates(a: Attempt, usage: Usage): void {
    if (a.firstContentAtMs === undefined) return;
    const now = this.#d.clock.nowMs();
    this.#d.registry.observeRates(a.providerId, this.#job.model, {
      requestId: this.#job.requestId,
      promptTokens: this.#job.traits.estimatedPromptTokens,
      completionTokens: usage.completionTokens,
      streamedChars: a.contentChars,
      ttftMs: a.firstContentAtMs - a.startedAtMs,
      decodeMs: now - a.firstContentAtMs,
      coldStart: a.acceptedAtMs !== undefined,
    });
  }

  /** The usage to bill: the provider's claim where the coordinator's own count backs it, else that count. */
  #billedUsage(a: Attempt, e: ProviderEvent & { kind: "complete" }): Usage {
    const check = this.#job.usageCheck;
    if (!check) return clampUsage(e.usage, this.#job.traits.maxTokens);
    // A refused claim (a count no request reaches) is no claim: bill our own count.
    const claimed = e.usageRefused ? { promptTokens: Infinity, completionTokens: Infinity, reasoningTokens: 0 } : e.usage;
    const defended = defendUsage({
      claimed,
      ownPrompt: check.promptTokens(),
      ownCompletion: a.output.tokens,
      family: check.family,
      maxTokens: this.#job.traits.maxTokens,
      toolCalls: a.output.toolCalls,
    });
    this.#d.onUsageChecked?.({ providerId: a.providerId, requestId: this.#job.requestId, model: this.#job.model, defended });
    return defended.usage;
  }

  /** One routing decision as an instant child span of the request (a queued request's re-picks: the first only). */
  #traceDecision(d: PickResult, backup: boolean): void {
    if (!this.#job.trace || (d.kind === "queue" && this.#queueTraced)) return;
    if (d.kind === "queue") this.#queueTraced = true;
    const span = startSpan("route", this.#job.trace, {
      "coordinator.routing.phase": backup ? "backup" : this.#attemptCount > 0 ? "failover" : "dispatch",
      "coordinator.routing.decision": d.kind,
      "coordinator.routing.reason": d.kind === "reject" ? d.code : d.reason,
      ...(d.kind === "picked" ? { "coordinator.provider.id": d.providerId, "coordinator.routing.cold": d.cold } : {}),
    });
    span.end();
  }

  /** Ends an attempt's span once (`outcome`: success, failed, cancelled; `reason`: the fault or cancel reason). */
  #endAttemptSpan(a: Attempt, outcome: string, reason: string | undefined, error?: CoordinatorError, attributes: Record<string, string | number | boolean | string[]> = {}): void {
    const span = this.#spans.get(a.providerId);
    if (!span) return;
    this.#spans.delete(a.providerId);
    endSpan(span, error, { "coordinator.attempt.outcome": outcome, ...(reason !== undefined ? { "coordinator.attempt.reason": reason } : {}), ...attributes });
  }

  /** One operator log line about this request (and, when given, one of its attempts). */
  #log(level: "debug" | "info" | "warn", msg: string, a: Attempt | undefined, fields: Record<string, unknown>): void {
    const log = this.#d.log;
    if (!log) return;
    const who = a ? { provider_id: a.providerId, attempt: this.#ordinal(a) } : {};
    log[level](msg, { request_id: this.#job.requestId, model: this.#job.model, ...who, ...fields });
  }

  /** 1-based: attempts are kept in dispatch order, one per provider. */
  #ordinal(a: Attempt): number {
    let n = 0;
    for (const x of this.#attempts.values()) {
      n++;
      if (x === a) break;
    }
    return n;
  }

  #finish(r: DispatchResult): void {
    if (this.#result) return;
    this.#result = r;
    this.#speculativeTimer?.();
    for (const a of this.#attempts.values()) {
      a.timer?.();
      this.#d.registry.removeInflight(a.providerId, this.#job.requestId);
      this.#endAttemptSpan(a, r.kind, r.kind === "failed" ? r.error.code : undefined);
    }
    this.#signal.removeEventListener("abort", this.#onAbort);
    if (!(r.kind === "failed" && isShed(r.error, r.attempts))) observe("inference.duration_ms", this.#d.clock.nowMs() - this.#startedAtMs, { model: this.#job.model, outcome: r.kind });
    this.#resolve(r);
  }
}

/** A request refused for load before any attempt: shedding, never a failed dispatch or a 0 ms duration. */
function isShed(error: CoordinatorError, attempts: number): boolean {
  return attempts === 0 && (error.code === "capacity_exhausted" || error.code === "rate_limited");
}

function served(a: Attempt): { providerId: ProviderId; providerAccountId: string } {
  return { providerId: a.providerId, providerAccountId: a.accountId };
}
