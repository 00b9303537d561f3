/**
 * The scheduling side of a run: one scheduling step (pick → open → send), waiting in the capacity queue when
 * capable providers exist but none has room, and the speculative backup raced at a fraction of the first-token
 * deadline. Kept apart from the run because it is the only part that talks to the scheduler and the queue; what
 * an attempt's events mean is the run's business, reached through {@link LaunchHooks}.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { CoordinatorError } from "../errors/coordinator-error.js";
import type { ProviderEvent } from "../inference/types.js";
import type { ProviderId } from "../registry/types.js";
import { count } from "../telemetry/metrics.js";
import type { Cancel } from "../util/clock.js";
import type { Attempt } from "./attempt.js";
import type { AttemptControl } from "./attempt-control.js";
import type { CancelSignal } from "./cancel-signal.js";
import { rejectError } from "./dispatch-errors.js";
import { firstTokenDeadlineMs } from "./dispatch-options.js";
import type { FailoverBook } from "./failover-book.js";
import type { RunDeps } from "./run-deps.js";
import type { RunLog } from "./run-log.js";
import type { DispatchJob } from "./types.js";

/** What the launcher asks of, and tells, its run. */
export interface LaunchHooks {
  /** The run has ended: nothing more may start. */
  ended(): boolean;
  /** Some attempt leads (a backup would be pointless). */
  leading(): boolean;
  /** Ends the run before commit with this error. */
  fail(error: CoordinatorError): void;
  /** An attempt's provider event. */
  onEvent(a: Attempt, e: ProviderEvent): void;
  /** An attempt's timer fired. */
  onTimer(a: Attempt): void;
}

/** The parts of the run the launcher works with. */
export interface LauncherParts {
  deps: RunDeps;
  job: DispatchJob;
  signal: CancelSignal;
  book: FailoverBook;
  control: AttemptControl;
  log: RunLog;
  hooks: LaunchHooks;
}

export class AttemptLauncher {
  readonly #p: LauncherParts;
  /** An attempt has been sent to a provider ({@link DispatchJob.onDispatched} has been called). */
  #dispatched = false;
  #speculativeTimer: Cancel | undefined;
  #speculated = false;

  constructor(parts: LauncherParts) {
    this.#p = parts;
  }

  /** Dispatches now, or waits in the capacity queue until a pick succeeds (429 when full or too long). */
  async launch(isBackup: boolean): Promise<void> {
    const { deps, job, book, hooks } = this.#p;
    if (this.#tryStart(isBackup) !== "queue" || isBackup || book.live() > 0) return;
    // A failover waits only for what is left of its pre-content budget.
    const failover = book.count > 0;
    const left = book.budgetLeftMs(deps.clock.nowMs(), deps.options);
    if (failover && left <= 0) {
      hooks.fail(book.exhaustedError(job.model));
      return;
    }
    try {
      // Bound: the queue retries from whichever request freed capacity; the attempt belongs to this one's log scope.
      await deps.waitForCapacity(
        job,
        AsyncLocalStorage.bind(() => this.#tryStart(false) !== "queue"),
        this.#p.signal,
        failover ? left : undefined,
      );
    } catch (e) {
      if (!hooks.ended()) hooks.fail(book.count > 0 ? book.exhaustedError(job.model) : CoordinatorError.from(e));
    }
  }

  /** No backup any more (the run has a leader, or ended). */
  cancelBackup(): void {
    this.#speculativeTimer?.();
  }

  /**
   * One scheduling step: pick and dispatch. Returns "started", "failed" (the run ended), or "queue" when capable
   * providers exist but none has room (or a backup found nobody).
   */
  #tryStart(isBackup: boolean): "started" | "failed" | "queue" {
    const { deps, job, book, control, hooks } = this.#p;
    if (hooks.ended()) return "failed";
    const decision = deps.pick(book.routeRequest(job));
    control.trace.decision(decision, isBackup ? "backup" : book.count > 0 ? "failover" : "dispatch");
    if (decision.kind === "picked") {
      this.#start(decision.providerId, isBackup, decision.reservedTokens);
      return "started";
    }
    if (isBackup || book.live() > 0) return "queue"; // a backup is opportunistic; someone is still working
    if (decision.kind === "reject") {
      // After attempts, "nobody left" means the failures exhausted the fleet: report what failed.
      hooks.fail(book.count > 0 ? book.exhaustedError(job.model) : rejectError(decision));
      return "failed";
    }
    return "queue";
  }

  #start(providerId: ProviderId, backup: boolean, reservedTokens: number): void {
    const { deps, job, book, control, log, hooks } = this.#p;
    const opened = control.open(providerId, backup, reservedTokens);
    if (!opened) {
      book.exclude(providerId);
      if (!backup) void this.launch(false);
      return;
    }
    const { a, channel } = opened;
    book.add(a);
    const reason = backup ? "slow_first_token" : book.count > 1 ? "failover" : "first_pick";
    if (backup) {
      const primary = [...book.all()].find((x) => x !== a && x.phase !== "done");
      log.line("info", "speculative backup dispatched", a, {
        reason,
        ...(primary ? { primary_provider_id: primary.providerId } : {}),
      });
    } else {
      log.line("debug", "inference dispatched", a, { reason });
    }
    if (!control.send(a, channel, book.count, reason, hooks.onEvent)) {
      hooks.onEvent(a, { kind: "disconnected", message: "provider session closed" });
      return;
    }
    if (!this.#dispatched) {
      this.#dispatched = true;
      job.onDispatched?.();
    }
    control.arm(a, a.deadlineAtMs, hooks.onTimer);
    if (!backup && !this.#speculated)
      this.#armBackup(firstTokenDeadlineMs(deps.options, job.traits.estimatedPromptTokens));
  }

  /** At a fraction of the first-token deadline, race a backup on another provider. */
  #armBackup(deadlineMs: number): void {
    const { deps, job, book, hooks } = this.#p;
    const f = deps.options.speculativeFraction;
    if (f <= 0 || job.pinnedAccountId !== undefined) return;
    this.#speculated = true;
    this.#speculativeTimer = deps.clock.setTimeout(
      () => {
        if (hooks.ended() || hooks.leading() || book.live() !== 1) return;
        const before = book.count;
        void this.launch(true).then(() => {
          if (book.count > before) count("inference.speculative_dispatch", { model: job.model });
        });
      },
      Math.floor(deadlineMs * f),
    );
  }
}
