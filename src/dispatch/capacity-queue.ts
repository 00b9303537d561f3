/**
 * Where requests wait when every capable provider is busy: the timers and promises around the scheduler's
 * pure {@link RequestQueue} (bounded per model, FIFO, wait limit, drain-rate Retry-After).
 *
 * When capacity may have appeared (a heartbeat with headroom, a finished request, a model load finishing, a
 * new provider), waiters are offered it in FIFO order: each tries to start itself (a scheduler pick) and
 * leaves the queue only if it did, so nobody loses their place to a request that arrived later. Overload is
 * answered before anything is committed: 429 with a Retry-After computed from the measured completion rate.
 */
import { CoordinatorError } from "../errors/coordinator-error.js";
import { RequestQueue } from "../scheduler/request-queue.js";
import { count, gauge, observe } from "../telemetry/metrics.js";
import type { Cancel, Clock } from "../util/clock.js";
import type { CancelSignal } from "./cancel-signal.js";

/** A queued request: `tryStart` runs the scheduler for it and returns true if it is now being served. */
interface Waiter {
  tryStart(): boolean;
  resolve(): void;
  reject(e: CoordinatorError): void;
  cancelTimer: Cancel;
}

export interface CapacityQueueOptions {
  clock: Clock;
  /** Max waiters per model. Default 10. */
  limit: number;
  /** Longest wait, ms. Default 120,000. */
  waitMs: number;
}

export class CapacityQueue {
  readonly #o: CapacityQueueOptions;
  readonly #queue: RequestQueue<Waiter>;
  #closed: CoordinatorError | undefined;
  #waking = false;

  constructor(options: CapacityQueueOptions) {
    this.#o = options;
    this.#queue = new RequestQueue<Waiter>({ maxDepthPerModel: options.limit, maxWaitMs: options.waitMs });
  }

  get limit(): number {
    return this.#o.limit;
  }

  depth(model: string): number {
    return this.#queue.depth(model);
  }

  /** Every model's current depth (for the capacity endpoint). */
  depths(): Map<string, number> {
    return this.#queue.depths();
  }

  /** Seconds a client turned away now should wait (see {@link RequestQueue.retryAfterMs}). */
  retryAfterS(model: string): number {
    return Math.ceil(this.#queue.retryAfterMs(model, this.#o.clock.nowMs()) / 1000);
  }

  /** Records that a request for `model` finished: the completion rate behind Retry-After. */
  recordCompletion(model: string): void {
    this.#queue.recordService(model, this.#o.clock.nowMs());
  }

  /**
   * Queues a request that found no capacity. Resolves once its `tryStart` succeeded; rejects with 429 when
   * the queue is full or the wait limit passes, and with `canceled` when the signal aborts.
   */
  wait(
    model: string,
    requestId: string,
    tryStart: () => boolean,
    signal: CancelSignal,
    maxWaitMs = this.#o.waitMs,
  ): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closed);
    const now = this.#o.clock.nowMs();
    return new Promise<void>((resolve, reject) => {
      const leave = () => {
        waiter.cancelTimer();
        signal.removeEventListener("abort", onAbort);
        this.#queue.remove(requestId);
        gauge("request_queue.depth", this.#queue.depth(model), { model });
        observe("request_queue.wait_ms", this.#o.clock.nowMs() - now, { model });
      };
      const waiter: Waiter = {
        tryStart,
        resolve: () => {
          leave();
          resolve();
        },
        reject: (e) => {
          leave();
          reject(e);
        },
        cancelTimer: () => undefined,
      };
      const onAbort = () => waiter.reject(new CoordinatorError("canceled", "client disconnected while queued"));
      const queued = this.#queue.enqueue(model, requestId, waiter, now);
      if (queued.kind === "full") {
        count("request_queue.rejected", { model, reason: "full" });
        reject(this.#overload(`the queue for ${model} is full (${this.#o.limit} waiting)`, queued.retryAfterMs));
        return;
      }
      waiter.cancelTimer = this.#o.clock.setTimeout(() => {
        count("request_queue.timeout", { model });
        waiter.reject(
          this.#overload(
            `no capacity for ${model} within ${Math.round(maxWaitMs / 1000)} s`,
            this.#queue.retryAfterMs(model, this.#o.clock.nowMs()),
          ),
        );
      }, maxWaitMs);
      signal.addEventListener("abort", onAbort, { once: true });
      gauge("request_queue.depth", this.#queue.depth(model), { model });
    });
  }

  /**
   * Shutdown: nothing will free capacity here any more, so every waiter, and every later `wait`, is rejected
   * with `error` at once instead of hanging until the servers close.
   */
  close(error: CoordinatorError): void {
    this.#closed = error;
    for (const m of this.#queue.models()) for (const e of this.#queue.entries(m)) e.item.reject(error);
  }

  /** Offers capacity to the waiters of `model` (or of every model), oldest first. */
  wake(model: string | undefined): void {
    // A waiter's tryStart registers work in the registry, which can emit another capacity event: do not
    // re-enter; the outer loop is already walking the queue.
    if (this.#waking) return;
    this.#waking = true;
    try {
      for (const m of model === undefined ? this.#queue.models() : [model]) {
        // A snapshot: entries that start leave the queue as we go; the rest keep their places.
        for (const e of this.#queue.entries(m)) {
          if (this.#queue.depth(m) === 0) break;
          if (e.item.tryStart()) e.item.resolve();
        }
      }
    } finally {
      this.#waking = false;
    }
  }

  #overload(message: string, retryAfterMs: number): CoordinatorError {
    return new CoordinatorError("capacity_exhausted", `${message}; retry later`, {
      wireCode: "rate_limit_exceeded",
      retryAfterS: Math.max(1, Math.ceil(retryAfterMs / 1000)),
    });
  }
}
