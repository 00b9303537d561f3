/**
 * What opening, sending, cancelling and ending an attempt does to the rest of the coordinator: the registry's
 * in-flight accounting, the provider channel, health outcomes, the attempt's timer and its span. The run
 * decides *when*; this carries it out. Kept apart so that every side effect one attempt has on the fleet is in
 * one place, and each happens once whichever way the attempt ends.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { CoordinatorError } from "../errors/coordinator-error.js";
import type { Delta, ProviderEvent } from "../inference/types.js";
import type { ProviderId } from "../registry/types.js";
import { StreamedOutput } from "../usage/streamed-output.js";
import { charsToTokens, outputChars, type Attempt } from "./attempt.js";
import { AttemptTracer, type DispatchReason } from "./attempt-tracer.js";
import { firstTokenDeadlineMs } from "./dispatch-options.js";
import type { Failure } from "./failover-book.js";
import type { ProviderChannel } from "./provider-channel.js";
import type { RunDeps } from "./run-deps.js";
import type { DispatchJob, DispatchResult } from "./types.js";

/** A health outcome of one attempt (DispatchHealth.recordOutcome's `kind`). */
type OutcomeKind = "success" | "incomplete" | "sickness" | "capacity" | "client_error";

export class AttemptControl {
  readonly #d: RunDeps;
  readonly #job: DispatchJob;
  /** The request's routing decisions and attempts as spans. */
  readonly trace: AttemptTracer;

  constructor(deps: RunDeps, job: DispatchJob) {
    this.#d = deps;
    this.#job = job;
    this.trace = new AttemptTracer(job.trace, job.model);
  }

  /**
   * Opens an attempt on a picked provider and counts it in the provider's in-flight load (the scheduler's view)
   * until it ends. Undefined when the provider left since the pick.
   */
  open(
    providerId: ProviderId,
    backup: boolean,
    reservedTokens: number,
  ): { a: Attempt; channel: ProviderChannel } | undefined {
    const { registry, directory, clock, options } = this.#d;
    const rec = registry.get(providerId);
    const channel = directory.channel(providerId);
    if (!rec || !channel) return undefined;
    const now = clock.nowMs();
    const prompt = this.#job.traits.estimatedPromptTokens;
    const deadlineAtMs = now + firstTokenDeadlineMs(options, prompt);
    const a: Attempt = {
      providerId,
      accountId: rec.accountId,
      version: rec.version,
      backup,
      phase: "waiting",
      startedAtMs: now,
      deadlineAtMs,
      contentChars: 0,
      output: new StreamedOutput(),
    };
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
    return { a, channel };
  }

  /** Sends the attempt (`ordinal`: 1-based) under its own span. False when the session had already closed. */
  send(
    a: Attempt,
    channel: ProviderChannel,
    ordinal: number,
    reason: DispatchReason,
    onEvent: (a: Attempt, e: ProviderEvent) => void,
  ): boolean {
    const traceContext = this.trace.startAttempt(a.providerId, ordinal, a.backup, reason);
    const j = this.#job;
    return channel.dispatch(
      {
        requestId: j.requestId,
        model: j.model,
        bodyJson: j.bodyJson,
        traits: j.traits,
        shape: j.shape,
        ...(j.callerAccountId !== undefined ? { callerAccountId: j.callerAccountId } : {}),
        ...(j.pinnedAccountId !== undefined ? { pinnedAccountId: j.pinnedAccountId } : {}),
        ...(traceContext ? { traceContext } : {}),
      },
      // Events arrive on the provider's stream: bound here, their log lines carry this request's ids.
      AsyncLocalStorage.bind((e: ProviderEvent) => onEvent(a, e)),
    );
  }

  /** (Re)arms the attempt's one timer to fire at `atMs`. */
  arm(a: Attempt, atMs: number, onTimer: (a: Attempt) => void): void {
    a.timer?.();
    a.timer = this.#d.clock.setTimeout(() => onTimer(a), Math.max(0, atMs - this.#d.clock.nowMs()));
  }

  /** The provider sent its first frame for the attempt. */
  started(a: Attempt): void {
    if (a.started) return;
    a.started = true;
    this.#d.registry.markStarted(a.providerId, this.#job.requestId);
  }

  /** Counts the leader's streamed output: its characters, and the tokens the registry sees it using. */
  countOutput(a: Attempt, deltas: readonly Delta[]): void {
    const chars = outputChars(deltas);
    a.contentChars += chars;
    this.#d.registry.addUsedTokens(a.providerId, this.#job.requestId, charsToTokens(chars));
  }

  /** Tells the provider to stop; the attempt is done and out of its in-flight load. */
  cancel(a: Attempt, reason: string): void {
    if (a.phase !== "done") a.phase = "done";
    this.trace.endAttempt(a.providerId, "cancelled", reason);
    a.timer?.();
    this.#d.directory.channel(a.providerId)?.cancel(this.#job.requestId, reason);
    this.#d.registry.removeInflight(a.providerId, this.#job.requestId);
  }

  /** A refused attempt (cluster mode): done, out of the in-flight load, no health outcome (the Mac did nothing). */
  withdraw(a: Attempt, reason: string): void {
    a.phase = "done";
    a.timer?.();
    this.#d.registry.removeInflight(a.providerId, this.#job.requestId);
    this.trace.endAttempt(a.providerId, "refused", reason);
  }

  /** A failed attempt: done, its failure fed to health, out of the in-flight load, its span ended. */
  fail(a: Attempt, f: Failure, nowMs: number): void {
    const { health, registry } = this.#d;
    a.phase = "done";
    a.timer?.();
    this.recordOutcome(a, f.cls === "deterministic" ? "client_error" : f.cls, nowMs);
    if (f.loadRefused) health.recordLoadRefusal(a.providerId, this.#job.model, nowMs);
    registry.removeInflight(a.providerId, this.#job.requestId);
    const attributes = {
      "coordinator.error.class": f.cls,
      "coordinator.provider.status": f.status,
      ...(f.providerReason ? { "coordinator.provider.reason": f.providerReason } : {}),
    };
    this.trace.endAttempt(
      a.providerId,
      "failed",
      f.fault,
      new CoordinatorError("provider_failed", f.message),
      attributes,
    );
  }

  /** Feeds the attempt's outcome to the provider's health. */
  recordOutcome(a: Attempt, kind: OutcomeKind, nowMs: number): void {
    this.#d.health.recordOutcome({
      providerId: a.providerId,
      model: this.#job.model,
      shape: this.#job.shape,
      kind,
      nowMs,
    });
  }

  /** The run ended: no attempt keeps a timer, an in-flight slot or an open span. */
  release(a: Attempt, r: DispatchResult): void {
    a.timer?.();
    this.#d.registry.removeInflight(a.providerId, this.#job.requestId);
    this.trace.endAttempt(a.providerId, r.kind, r.kind === "failed" ? r.error.code : undefined);
  }
}
