/**
 * Per-model FIFO of requests waiting for capacity: bounded (default 10 per model) with a wait limit
 * (default 120 s). A pure data structure with time passed in: the dispatcher owns timers and calls
 * {@link RequestQueue.shift} to drain when capacity may have appeared (a heartbeat with headroom, a finished
 * request, a completed load, a new provider), and {@link RequestQueue.expire} on a timer.
 *
 * `retryAfterMs` is honest: the expected time until a new arrival would be served, from the *measured* drain
 * rate (an EWMA of the interval between service events, i.e. dequeues and completions) and the current depth,
 * clamped to [1 s, 60 s].
 */

export interface RequestQueueOptions {
  /** Most waiting requests per model. Default 10. */
  maxDepthPerModel?: number;
  /** Longest a request may wait, ms. Default 120_000. */
  maxWaitMs?: number;
  /** EWMA weight of the newest inter-event interval, (0, 1]. Default 0.2. */
  drainAlpha?: number;
  /** Bounds of the Retry-After hint, ms. Defaults 1000 and 60_000. */
  minRetryAfterMs?: number;
  maxRetryAfterMs?: number;
  /** Hint used before any service event was measured for the model, ms. Default 5000. */
  unmeasuredRetryAfterMs?: number;
}

export interface QueuedEntry<T> {
  id: string;
  model: string;
  enqueuedAtMs: number;
  item: T;
}

export type EnqueueResult = { kind: "queued"; position: number } | { kind: "full"; retryAfterMs: number };

interface DrainState {
  /** EWMA of the interval between service events, ms; undefined until two events were seen. */
  intervalMs: number | undefined;
  lastEventMs: number | undefined;
}

/** See the module comment. */
export class RequestQueue<T> {
  readonly #maxDepth: number;
  readonly #maxWaitMs: number;
  readonly #alpha: number;
  readonly #minRetry: number;
  readonly #maxRetry: number;
  readonly #unmeasured: number;
  readonly #queues = new Map<string, QueuedEntry<T>[]>();
  readonly #byId = new Map<string, QueuedEntry<T>>();
  readonly #drain = new Map<string, DrainState>();

  constructor(options: RequestQueueOptions = {}) {
    this.#maxDepth = options.maxDepthPerModel ?? 10;
    this.#maxWaitMs = options.maxWaitMs ?? 120_000;
    this.#alpha = options.drainAlpha ?? 0.2;
    this.#minRetry = options.minRetryAfterMs ?? 1000;
    this.#maxRetry = options.maxRetryAfterMs ?? 60_000;
    this.#unmeasured = options.unmeasuredRetryAfterMs ?? 5000;
  }

  /** The configured bound per model. */
  get limit(): number {
    return this.#maxDepth;
  }

  /** Appends a request, or refuses with an honest Retry-After when the model's queue is full. */
  enqueue(model: string, id: string, item: T, nowMs: number): EnqueueResult {
    const q = this.#queues.get(model) ?? [];
    if (q.length >= this.#maxDepth) return { kind: "full", retryAfterMs: this.retryAfterMs(model, nowMs) };
    const e: QueuedEntry<T> = { id, model, enqueuedAtMs: nowMs, item };
    q.push(e);
    this.#queues.set(model, q);
    this.#byId.set(id, e);
    return { kind: "queued", position: q.length };
  }

  /** Removes a request (client gone, or served elsewhere). Returns it if it was queued. */
  remove(id: string): QueuedEntry<T> | undefined {
    const e = this.#byId.get(id);
    if (!e) return undefined;
    this.#byId.delete(id);
    const q = this.#queues.get(e.model)!;
    q.splice(q.indexOf(e), 1);
    if (q.length === 0) this.#queues.delete(e.model);
    return e;
  }

  /** Removes and returns every entry that has waited longer than the limit. */
  expire(nowMs: number): QueuedEntry<T>[] {
    const out: QueuedEntry<T>[] = [];
    for (const q of [...this.#queues.values()]) {
      // FIFO: expired entries are at the front.
      while (q.length > 0 && nowMs - q[0]!.enqueuedAtMs >= this.#maxWaitMs) out.push(this.remove(q[0]!.id)!);
    }
    return out;
  }

  /** A model's waiting entries, oldest first (a copy: safe to iterate while removing). */
  entries(model: string): QueuedEntry<T>[] {
    return [...(this.#queues.get(model) ?? [])];
  }

  /** The oldest entry for a model, without removing it. */
  peek(model: string): QueuedEntry<T> | undefined {
    return this.#queues.get(model)?.[0];
  }

  /** Removes the oldest entry for a model (it is being dispatched) and records a service event. */
  shift(model: string, nowMs: number): QueuedEntry<T> | undefined {
    const e = this.peek(model);
    if (!e) return undefined;
    this.remove(e.id);
    this.recordService(model, nowMs);
    return e;
  }

  /** Records that capacity for `model` turned over (a request finished): feeds the drain-rate estimate. */
  recordService(model: string, nowMs: number): void {
    const s = this.#drain.get(model) ?? { intervalMs: undefined, lastEventMs: undefined };
    if (s.lastEventMs !== undefined) {
      const dt = Math.max(0, nowMs - s.lastEventMs);
      s.intervalMs = s.intervalMs === undefined ? dt : s.intervalMs + this.#alpha * (dt - s.intervalMs);
    }
    s.lastEventMs = nowMs;
    this.#drain.set(model, s);
  }

  /** Waiting requests for a model. */
  depth(model: string): number {
    return this.#queues.get(model)?.length ?? 0;
  }

  /** Models with at least one waiting request. */
  models(): string[] {
    return [...this.#queues.keys()];
  }

  /** Depth per model, for the capacity endpoint. */
  depths(): Map<string, number> {
    const m = new Map<string, number>();
    for (const [k, q] of this.#queues) m.set(k, q.length);
    return m;
  }

  /** Measured service events per second for a model (0 when unmeasured). */
  drainRatePerS(model: string, nowMs: number): number {
    const s = this.#drain.get(model);
    if (!s || s.intervalMs === undefined || s.lastEventMs === undefined) return 0;
    // A silence longer than the typical interval is evidence the drain slowed: count it.
    const interval = Math.max(s.intervalMs, nowMs - s.lastEventMs, 1);
    return 1000 / interval;
  }

  /**
   * Expected wait before a new arrival would be served: (depth + 1) ÷ drain rate, clamped to
   * [minRetryAfterMs, maxRetryAfterMs]; the unmeasured default before any rate is known.
   */
  retryAfterMs(model: string, nowMs: number): number {
    const rate = this.drainRatePerS(model, nowMs);
    const raw = rate > 0 ? ((this.depth(model) + 1) / rate) * 1000 : this.#unmeasured;
    return Math.round(Math.min(this.#maxRetry, Math.max(this.#minRetry, raw)));
  }
}
