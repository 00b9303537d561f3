/**
 * Where requests wait when every capable provider is busy: per model, bounded, FIFO, with a wait limit.
 * Waiters are woken the moment capacity may have appeared (a heartbeat with headroom, a finished request, a
 * model load finishing, a new provider) and then re-run the scheduler themselves.
 *
 * Overload is answered honestly and before anything is committed: 429 with a Retry-After computed from the
 * measured drain rate of the model's queue.
 */
import { CoordinatorError } from "../errors/coordinator-error.js";
import { count, gauge } from "../telemetry/metrics.js";
import type { Cancel, Clock } from "../util/clock.js";

interface Waiter {
  requestId: string;
  wake: () => void;
}

interface ModelQueue {
  waiters: Waiter[];
  /** EWMA of dequeues per second, for Retry-After. */
  drainPerS: number;
  lastDrainAtMs: number;
}

export interface CapacityQueueOptions {
  clock: Clock;
  /** Max waiters per model. Default 10. */
  limit: number;
  /** Longest wait. Default 120,000 ms. */
  waitMs: number;
}

export class CapacityQueue {
  readonly #o: CapacityQueueOptions;
  readonly #queues = new Map<string, ModelQueue>();

  constructor(options: CapacityQueueOptions) {
    this.#o = options;
  }

  depth(model: string): number {
    return this.#queues.get(model)?.waiters.length ?? 0;
  }

  /** Every model's current depth (for the capacity endpoint). */
  depths(): Map<string, number> {
    const m = new Map<string, number>();
    for (const [k, q] of this.#queues) m.set(k, q.waiters.length);
    return m;
  }

  get limit(): number {
    return this.#o.limit;
  }

  /**
   * Seconds a client turned away now should wait: the time for the queue ahead to drain at the measured
   * rate, clamped to [1, 60]; the scheduler's own hint when no rate has been measured yet.
   */
  retryAfterS(model: string, hintMs: number): number {
    const q = this.#queues.get(model);
    const depth = (q?.waiters.length ?? 0) + 1;
    const est = q && q.drainPerS > 0 ? depth / q.drainPerS : hintMs / 1000;
    return Math.min(60, Math.max(1, Math.ceil(est)));
  }

  /**
   * Waits until {@link wake} is called for the model (or any model), the wait limit passes (429), or the
   * signal aborts. Rejects at once with 429 when the queue is full.
   */
  wait(model: string, requestId: string, hintMs: number, signal: AbortSignal, maxWaitMs = this.#o.waitMs): Promise<void> {
    let q = this.#queues.get(model);
    if (!q) this.#queues.set(model, (q = { waiters: [], drainPerS: 0, lastDrainAtMs: this.#o.clock.nowMs() }));
    const queue = q;
    if (queue.waiters.length >= this.#o.limit) {
      count("request_queue.rejected", { model, reason: "full" });
      return Promise.reject(this.#overload(model, hintMs, `the queue for ${model} is full (${this.#o.limit} waiting)`));
    }
    return new Promise<void>((resolve, reject) => {
      let timer: Cancel | undefined;
      const leave = () => {
        timer?.();
        signal.removeEventListener("abort", onAbort);
        const i = queue.waiters.indexOf(waiter);
        if (i >= 0) queue.waiters.splice(i, 1);
        gauge("request_queue.depth", queue.waiters.length, { model });
      };
      const waiter: Waiter = {
        requestId,
        wake: () => {
          leave();
          this.#recordDrain(queue);
          resolve();
        },
      };
      const onAbort = () => {
        leave();
        reject(new CoordinatorError("canceled", "client disconnected while queued"));
      };
      timer = this.#o.clock.setTimeout(() => {
        leave();
        count("request_queue.timeout", { model });
        reject(this.#overload(model, hintMs, `no capacity for ${model} within ${Math.round(maxWaitMs / 1000)} s`));
      }, maxWaitMs);
      signal.addEventListener("abort", onAbort, { once: true });
      queue.waiters.push(waiter);
      gauge("request_queue.depth", queue.waiters.length, { model });
    });
  }

  /** Wakes waiters of `model` (or of every model) in FIFO order; each re-runs the scheduler. */
  wake(model: string | undefined): void {
    const targets = model === undefined ? [...this.#queues.values()] : [this.#queues.get(model)].filter((q): q is ModelQueue => q !== undefined);
    for (const q of targets) for (const w of [...q.waiters]) w.wake();
  }

  #recordDrain(q: ModelQueue): void {
    const now = this.#o.clock.nowMs();
    const dt = Math.max(1, now - q.lastDrainAtMs) / 1000;
    q.lastDrainAtMs = now;
    const rate = 1 / dt;
    q.drainPerS = q.drainPerS === 0 ? rate : 0.7 * q.drainPerS + 0.3 * rate;
  }

  #overload(model: string, hintMs: number, message: string): CoordinatorError {
    return new CoordinatorError("capacity_exhausted", `${message}; retry later`, {
      wireCode: "rate_limit_exceeded",
      retryAfterS: this.retryAfterS(model, hintMs),
    });
  }
}
