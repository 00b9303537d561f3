/**
 * One request's life in the dispatcher: pick → send → (race a backup) → commit on first content → stream →
 * settle the outcome. Each provider attempt is an {@link Attempt} moving through the phases described in
 * attempt.ts.
 *
 * Before commit every failure is invisible: the attempt is excluded and another provider is tried. After
 * commit a failure ends the stream with an explicit in-band error.
 */
import { CoordinatorError } from "../errors/coordinator-error.js";
import { isContentBearing, type Delta, type ProviderEvent, type Usage } from "../inference/types.js";
import type { ProviderRegistry } from "../registry/provider-registry.js";
import type { ProviderId } from "../registry/types.js";
import type { PickResult, RouteRequest } from "../scheduler/types.js";
import { count, observe } from "../telemetry/metrics.js";
import type { Cancel, Clock } from "../util/clock.js";
import type { CancelSignal } from "./cancel-signal.js";
import { charsToTokens, clampUsage, partialUsage, timerVerdict, type Attempt } from "./attempt.js";
import { deterministicError, exhaustedError, rejectError } from "./dispatch-errors.js";
import { firstTokenDeadlineMs, type DispatchOptions } from "./dispatch-options.js";
import type { ProviderDirectory } from "./provider-channel.js";
import type { DispatchHealth, DispatchJob, DispatchResult, DispatchSink, ErrorClassifier } from "./types.js";

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
  log?(msg: string, fields?: Record<string, unknown>): void;
}

export class RequestRun {
  readonly #d: RunDeps;
  readonly #job: DispatchJob;
  readonly #sink: DispatchSink;
  readonly #signal: CancelSignal;
  readonly #attempts = new Map<ProviderId, Attempt>();
  readonly #excluded = new Set<ProviderId>();
  readonly #held: Delta[] = [];
  readonly #startedAtMs: number;
  #winner: Attempt | undefined;
  #attemptCount = 0;
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
    const left = this.#d.options.maxPreContentMs - (this.#d.clock.nowMs() - this.#startedAtMs);
    if (this.#attemptCount > 0 && left <= 0) {
      this.#failPreCommit(this.#exhaustedError());
      return;
    }
    try {
      await this.#d.waitForCapacity(this.#job, () => this.#tryStart(false) !== "queue", this.#signal, this.#attemptCount > 0 ? left : undefined);
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
    this.#d.log?.("inference dispatched", { request_id: this.#job.requestId, provider_id: providerId, attempt: this.#attemptCount, backup });
    const sent = channel.dispatch(
      { requestId: this.#job.requestId, model: this.#job.model, bodyJson: this.#job.bodyJson, traits: this.#job.traits },
      (e) => this.#onEvent(a, e),
    );
    if (!sent) {
      this.#onEvent(a, { kind: "disconnected", message: "provider session closed" });
      return;
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
        this.#onFailure(a, e.statusCode, e.message, this.#d.classify(e), e.reason === "insufficient_memory" || e.reason === "model_load_failed");
        return;
      case "disconnected":
        this.#onFailure(a, 502, e.message, "sickness", false);
        return;
    }
  }

  #onChunk(a: Attempt, deltas: Delta[]): void {
    const { registry, clock } = this.#d;
    let chars = 0;
    for (const d of deltas) chars += d.kind === "content" || d.kind === "reasoning" ? d.text.length : d.kind === "tool_call" ? (d.arguments?.length ?? 0) : 0;
    if (this.#winner === a) {
      a.contentChars += chars;
      registry.addUsedTokens(a.providerId, this.#job.requestId, charsToTokens(chars));
      this.#sink.deltas(deltas);
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
    this.#commit(a);
    a.contentChars += chars;
    registry.addUsedTokens(a.providerId, this.#job.requestId, charsToTokens(chars));
    const replay = this.#held.length > 0 && !deltas.some((d) => d.kind === "role") ? [...this.#held, ...deltas] : deltas;
    this.#sink.deltas(replay);
    this.#arm(a, clock.nowMs() + this.#d.options.idleTimeoutMs);
  }

  /** First content: this attempt wins; every other attempt is cancelled and never billed. */
  #commit(a: Attempt): void {
    this.#winner = a;
    a.phase = "streaming";
    this.#speculativeTimer?.();
    for (const other of this.#attempts.values()) {
      if (other !== a && other.phase !== "done") this.#cancelAttempt(other, "lost the race to another provider");
    }
    if (a.backup) count("inference.speculative_win", { model: this.#job.model });
    observe("inference.ttft_ms", this.#d.clock.nowMs() - this.#startedAtMs, { model: this.#job.model });
    this.#sink.commit(a.providerId);
  }

  #onComplete(a: Attempt, e: ProviderEvent & { kind: "complete" }): void {
    if (this.#winner && this.#winner !== a) return;
    if (!this.#winner) {
      // A complete with no content at all (e.g. an empty answer): still a valid response.
      this.#commit(a);
      if (this.#held.length > 0) this.#sink.deltas(this.#held);
    }
    a.phase = "done";
    const usage = clampUsage(e.usage, this.#job.traits.maxTokens);
    this.#sink.finish(e.finishReason, usage);
    this.#d.health.recordOutcome({
      providerId: a.providerId,
      model: this.#job.model,
      shape: this.#job.shape,
      kind: usage.completionTokens > 0 ? "success" : "incomplete",
      nowMs: this.#d.clock.nowMs(),
    });
    count("inference.dispatches", { status: "success" });
    this.#finish({
      kind: "completed",
      providerId: a.providerId,
      providerAccountId: a.accountId,
      usage,
      finishReason: e.finishReason,
      attempts: this.#attemptCount,
    });
  }

  #onFailure(a: Attempt, status: number, message: string, cls: ReturnType<ErrorClassifier>, loadRefused: boolean): void {
    const { health, clock } = this.#d;
    const now = clock.nowMs();
    a.phase = "done";
    a.timer?.();
    const outcome = cls === "deterministic" ? "client_error" : cls;
    health.recordOutcome({ providerId: a.providerId, model: this.#job.model, shape: this.#job.shape, kind: outcome, nowMs: now });
    if (loadRefused) health.recordLoadRefusal(a.providerId, this.#job.model, now);
    this.#d.registry.removeInflight(a.providerId, this.#job.requestId);

    if (this.#winner === a) {
      count("inference.in_band_error", { model: this.#job.model });
      const err = new CoordinatorError("provider_failed", `the provider failed mid-stream: ${message}`, { wireCode: "provider_error" });
      this.#sink.failAfterCommit(err);
      this.#finish({ kind: "failed", error: err, committed: true, attempts: this.#attemptCount, served: served(a), partial: this.#partial(a) });
      return;
    }

    this.#excluded.add(a.providerId);
    this.#lastFailure = { status, message, capacity: cls === "capacity" };
    if (cls === "capacity") this.#capacityFailures++;
    if (status >= 500 && cls !== "capacity") this.#avoidVersion = a.version;
    if (cls === "deterministic" || cls === "client_error") {
      // Retrying elsewhere cannot help (e.g. the prompt exceeds the context): stop at once.
      this.#cancelAll("request cannot be served");
      this.#failPreCommit(cls === "deterministic" ? deterministicError(message) : new CoordinatorError("invalid_request", message));
      return;
    }
    count("inference.dispatches", { status: "retry_precontent" });
    if (this.#liveAttempts() > 0) return; // a racing attempt may still win
    if (this.#attemptCount >= this.#d.options.maxAttempts || this.#capacityFailures > this.#d.options.maxCapacityRetries || now - this.#startedAtMs > this.#d.options.maxPreContentMs) {
      this.#failPreCommit(this.#exhaustedError());
      return;
    }
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
        this.#cancelAttempt(a, "stalled");
        this.#onFailure(a, 504, "the provider stalled mid-stream", "sickness", false);
        return;
      case "first_token_timeout":
        count("inference.dispatches", { status: "timeout" });
        this.#cancelAttempt(a, "no content before the deadline");
        this.#onFailure(a, 504, "no content before the first-token deadline", "sickness", false);
        return;
    }
  }

  // ---- ending -----------------------------------------------------------------------------------------

  #cancelAttempt(a: Attempt, reason: string): void {
    if (a.phase !== "done") a.phase = "done";
    a.timer?.();
    this.#d.directory.channel(a.providerId)?.cancel(this.#job.requestId, reason);
    this.#d.registry.removeInflight(a.providerId, this.#job.requestId);
  }

  #cancelAll(reason: string): void {
    for (const a of this.#attempts.values()) if (a.phase !== "done") this.#cancelAttempt(a, reason);
  }

  #abort(): void {
    if (this.#result) return;
    const w = this.#winner;
    this.#cancelAll("client disconnected");
    count("routing.client_gone", { committed: w !== undefined });
    if (w) {
      this.#d.health.recordOutcome({ providerId: w.providerId, model: this.#job.model, shape: this.#job.shape, kind: "incomplete", nowMs: this.#d.clock.nowMs() });
      this.#finish({ kind: "cancelled", committed: true, attempts: this.#attemptCount, served: served(w), partial: this.#partial(w) });
    } else {
      this.#finish({ kind: "cancelled", committed: false, attempts: this.#attemptCount });
    }
  }

  #failPreCommit(error: CoordinatorError): void {
    this.#cancelAll("request failed");
    count("inference.dispatches", { status: "failure" });
    this.#finish({ kind: "failed", error, committed: false, attempts: this.#attemptCount });
  }

  #exhaustedError(): CoordinatorError {
    return exhaustedError(this.#job.model, this.#attemptCount, this.#lastFailure);
  }

  #partial(a: Attempt): Usage {
    return partialUsage(a, this.#job.traits.estimatedPromptTokens);
  }

  #finish(r: DispatchResult): void {
    if (this.#result) return;
    this.#result = r;
    this.#speculativeTimer?.();
    for (const a of this.#attempts.values()) {
      a.timer?.();
      this.#d.registry.removeInflight(a.providerId, this.#job.requestId);
    }
    this.#signal.removeEventListener("abort", this.#onAbort);
    observe("inference.duration_ms", this.#d.clock.nowMs() - this.#startedAtMs, { model: this.#job.model, outcome: r.kind });
    this.#resolve(r);
  }
}

function served(a: Attempt): { providerId: ProviderId; providerAccountId: string } {
  return { providerId: a.providerId, providerAccountId: a.accountId };
}
