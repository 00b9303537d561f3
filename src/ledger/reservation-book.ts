/**
 * The in-memory reservation book: every request id this process has reserved, and how it ended. It is what makes
 * reserve/settle/release exactly once per request id in memory (a duplicate finds the first outcome here), and it
 * decides when a reservation gets its durable `ledger_requests` row: only once the request reached a provider
 * ({@link ReservationBook.recordDispatch}) or settled, never for a request refused before dispatch (issue 13).
 * Resolved requests are remembered for `resolvedRetentionMs`, then forgotten (a later duplicate settle is then
 * answered from the database by the settle path).
 */
import { trackWrite, type Lease } from "./credit-book.js";
import type { EntryWriter } from "./entry-writer.js";
import type { Settlement } from "./types.js";

/** One request as this process knows it. */
export type RequestRecord =
  /** `recorded`: the reservation's row has been queued for writing (the request reached a provider, or settled). */
  | {
      state: "reserved";
      accountId: string;
      keyId: string;
      holderId: string;
      lease: Lease;
      reserved: bigint;
      model: string;
      atMs: number;
      recorded: boolean;
    }
  | { state: "settled"; settlement: Settlement; reserved: bigint; atMs: number }
  | { state: "released"; reserved: bigint; atMs: number };

/** A request still holding its reservation. */
export type ReservedRecord = Extract<RequestRecord, { state: "reserved" }>;

export interface ReservationBookOptions {
  /** Reservation rows are queued through the group-commit writer. */
  writer: Pick<EntryWriter, "write">;
  /** Keep resolved request ids this long for idempotent duplicates, ms. */
  resolvedRetentionMs: number;
}

/** The requests of one ledger process, by request id. */
export class ReservationBook {
  readonly #o: ReservationBookOptions;
  readonly #requests = new Map<string, RequestRecord>();

  constructor(options: ReservationBookOptions) {
    this.#o = options;
  }

  get(requestId: string): RequestRecord | undefined {
    return this.#requests.get(requestId);
  }

  /** Records the request's new state (a reservation, or how it was resolved). */
  set(requestId: string, record: RequestRecord): void {
    this.#requests.set(requestId, record);
  }

  /** The request reached a provider: queue its reservation's row (once; a no-op unless still reserved). */
  recordDispatch(requestId: string): void {
    const rec = this.#requests.get(requestId);
    if (rec?.state === "reserved") this.record(requestId, rec);
  }

  /** Queues the reservation's row, once. */
  record(requestId: string, rec: ReservedRecord): void {
    if (rec.recorded) return;
    rec.recorded = true;
    void trackWrite(
      rec.lease,
      this.#o.writer.write({
        kind: "reserve",
        requestId,
        accountId: rec.accountId,
        keyId: rec.keyId,
        leaseId: rec.lease.id,
        holderId: rec.holderId,
        model: rec.model,
        reservedMicroUsd: rec.reserved,
      }),
    );
  }

  /** Forgets requests resolved more than `resolvedRetentionMs` before `nowMs`; open reservations are kept. */
  forgetResolved(nowMs: number): void {
    const retentionMs = this.#o.resolvedRetentionMs;
    for (const [id, r] of this.#requests)
      if (r.state !== "reserved" && nowMs - r.atMs > retentionMs) this.#requests.delete(id);
  }
}
