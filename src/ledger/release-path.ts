/**
 * The release path: refund a request's whole reservation (failure, pre-content failover, client gone, or refused
 * before it reached a provider). The request moves off `reserved` exactly once in memory and its hold goes back
 * to its lease. A reservation that was never recorded (never dispatched) has no row, so nothing durable is
 * written: refusals cost nothing in PostgreSQL (issue 13). A recorded one queues its row's release for the next
 * group commit and waits at most `durableWaitMs` for it (not at all while the writer is degraded).
 */
import type { Clock } from "../util/clock.js";
import { trackWrite, type CreditBook } from "./credit-book.js";
import type { EntryWriter } from "./entry-writer.js";
import type { ReservationBook } from "./reservation-book.js";
import { timeout } from "../util/timeout.js";
import type { Ledger } from "./types.js";

export interface ReleasePathOptions {
  clock: Clock;
  credit: CreditBook;
  reservations: ReservationBook;
  /** Releases are queued here; while it is `degraded`, release does not wait for durability. */
  writer: Pick<EntryWriter, "write" | "degraded">;
  /** How long release waits for its write to be durable before returning anyway, ms. */
  durableWaitMs: number;
}

/** Creates `Ledger.release`: a no-op for an unknown or already resolved request. */
export function createReleasePath(o: ReleasePathOptions): Ledger["release"] {
  const { clock, credit, reservations, writer, durableWaitMs } = o;

  return async function release(requestId: string, reason: string): Promise<void> {
    const rec = reservations.get(requestId);
    if (rec?.state !== "reserved") return;
    reservations.set(requestId, { state: "released", reserved: rec.reserved, atMs: clock.nowMs() });
    credit.resolveHold(rec, 0n);
    // Never dispatched (refused or cancelled before reaching a provider): nothing durable to undo.
    if (!rec.recorded) return;
    const written = trackWrite(rec.lease, writer.write({ kind: "release", requestId, reason }));
    if (!writer.degraded) await timeout(clock, written, durableWaitMs);
  };
}
