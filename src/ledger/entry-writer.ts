/**
 * Group commit for ledger writes: the queue and its flush loop. Every reserve/settle/release/lease-close is
 * queued here and written by one flush loop: while a transaction is in flight new operations pile up, and the
 * next transaction writes them all with one statement per kind (the SQL is in `write-batch.ts`). 256 concurrent
 * requests therefore cost a handful of transactions, each touching only its own requests' rows.
 *
 * This file owns *when* writes happen (batching, retry with backoff, the bound on what is queued, who is waiting
 * for durability); `write-batch.ts` owns *what* is written and its idempotency, `quarantine.ts` what happens to
 * a write that can never succeed.
 *
 * When Postgres fails, the batch stays queued (bounded by `maxQueued`) and is retried with backoff; callers'
 * promises resolve when their operation is durable, whenever that is. A failure that retrying cannot fix (a data
 * or constraint error: {@link isDeterministicWriteError}) would otherwise block every write behind it forever,
 * so the batch is bisected until the failing operation stands alone; the others are written and that one goes
 * to `ledger_quarantine` with its error (a quarantined settlement releases its reservation, so the books still
 * balance), and the writer carries on. Every statement is idempotent, so re-writing a half that had already
 * committed before a transient failure changes nothing.
 */
import type { Kysely } from "kysely";
import { count, gauge, observe } from "../telemetry/metrics.js";
import type { Clock } from "../util/clock.js";
import type { Database } from "./schema.js";
import { isDeterministicWriteError, quarantine } from "./quarantine.js";
import { writeBatch } from "./write-batch.js";
import type { WriteOp } from "./write-op.js";

export type { WriteOp } from "./write-op.js";

interface Pending {
  op: WriteOp;
  resolve: () => void;
}

export interface EntryWriterOptions {
  db: Kysely<Database>;
  clock: Clock;
  /** Max operations per transaction. Default 2000. */
  maxBatch?: number;
  /** Max queued operations before `isFull()` (the ledger then sheds new reservations). Default 100_000. */
  maxQueued?: number;
  /** First retry delay after a failed flush, doubling up to 5 s. Default 100 ms. */
  retryMs?: number;
  /** Called with each flush error (logging, metrics). */
  onError?: (error: unknown) => void;
  /** Called once per operation moved to `ledger_quarantine`, with the error PostgreSQL gave for it. */
  onQuarantine?: (op: WriteOp, error: unknown) => void;
}

/** The single writer of request rows and entries for one ledger process. */
export class EntryWriter {
  readonly #o: Required<Omit<EntryWriterOptions, "onError" | "onQuarantine">> &
    Pick<EntryWriterOptions, "onError" | "onQuarantine">;
  #queue: Pending[] = [];
  #flushing = false;
  #scheduled = false;
  #failures = 0;
  #idleWaiters: Array<() => void> = [];
  #closed = false;

  constructor(options: EntryWriterOptions) {
    this.#o = { maxBatch: 2000, maxQueued: 100_000, retryMs: 100, ...options };
  }

  /** Queues an operation; resolves once it is committed. */
  write(op: WriteOp): Promise<void> {
    return new Promise((resolve) => {
      this.#queue.push({ op, resolve });
      this.#schedule(0);
    });
  }

  /** True while the last flush failed (Postgres slow or down). */
  get degraded(): boolean {
    return this.#failures > 0;
  }

  get queued(): number {
    return this.#queue.length;
  }

  isFull(): boolean {
    return this.#queue.length >= this.#o.maxQueued;
  }

  /** Resolves when everything queued so far is committed (or, after close(), when no flush is running). */
  drained(): Promise<void> {
    if (this.#queue.length === 0 && !this.#flushing) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops retrying; anything still queued is dropped (recovery treats it as never written). */
  close(): void {
    this.#closed = true;
    if (!this.#flushing) this.#notifyIdle(true);
  }

  #schedule(delayMs: number): void {
    if (this.#scheduled || this.#flushing || this.#closed) return;
    this.#scheduled = true;
    const run = () => {
      this.#scheduled = false;
      void this.#flush();
    };
    // setImmediate lets every request of the current tick join the batch; retries wait on the clock.
    if (delayMs === 0) setImmediate(run);
    else this.#o.clock.setTimeout(run, delayMs);
  }

  async #flush(): Promise<void> {
    if (this.#flushing || this.#closed || this.#queue.length === 0) {
      this.#notifyIdle();
      return;
    }
    this.#flushing = true;
    const batch = this.#queue.slice(0, this.#o.maxBatch);
    const started = performance.now();
    try {
      await this.#writeIsolating(batch.map((p) => p.op));
      this.#queue.splice(0, batch.length);
      this.#failures = 0;
      // Per batch, not per request: how long money takes to become durable, and how much rides on one commit.
      observe("ledger.write_ms", performance.now() - started);
      observe("ledger.batch_size", batch.length);
      for (const p of batch) p.resolve();
    } catch (e) {
      this.#failures++;
      count("ledger.write_failures");
      this.#o.onError?.(e);
    } finally {
      this.#flushing = false;
      // Writes waiting for PostgreSQL: grows while it is slow or down (served from leases meanwhile).
      gauge("ledger.queued", this.#queue.length);
    }
    if (this.#closed) return this.#notifyIdle(true);
    if (this.#queue.length > 0)
      this.#schedule(this.#failures === 0 ? 0 : Math.min(5000, this.#o.retryMs * 2 ** (this.#failures - 1)));
    else this.#notifyIdle();
  }

  /**
   * Writes `ops`; on a deterministic failure splits them in two (in queue order, so a settlement never runs
   * before its reservation) until the culprit is alone, then quarantines it. A transient failure propagates and
   * the whole batch is retried later.
   */
  async #writeIsolating(ops: WriteOp[]): Promise<void> {
    try {
      await writeBatch(this.#o.db, ops);
    } catch (e) {
      if (!isDeterministicWriteError(e)) throw e;
      if (ops.length === 1) {
        await quarantine(this.#o.db, ops[0]!, e);
        count("ledger.quarantined", { op: ops[0]!.kind });
        this.#o.onQuarantine?.(ops[0]!, e);
        return;
      }
      const half = Math.ceil(ops.length / 2);
      await this.#writeIsolating(ops.slice(0, half));
      await this.#writeIsolating(ops.slice(half));
    }
  }

  #notifyIdle(force = false): void {
    if (!force && (this.#queue.length > 0 || this.#flushing)) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}
