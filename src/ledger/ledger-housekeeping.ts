/**
 * The ledger's background loop, every `tickMs` and off the request path: heartbeat the holder (and start over
 * under a fresh id if recovery elsewhere closed it), return drained and idle leases, recover holders that went
 * silent, forget old resolved requests, and roll balances up every `rollupIntervalMs`. A failing step is reported
 * to `onError` and the loop carries on at the next tick.
 */
import type { Kysely } from "kysely";
import type { Clock } from "../util/clock.js";
import type { CreditBook } from "./credit-book.js";
import type { LedgerHolder } from "./ledger-holder.js";
import { recoverDeadHolders } from "./recovery.js";
import type { ReservationBook } from "./reservation-book.js";
import { rollupBalances } from "./rollup.js";
import type { Database } from "./schema.js";

export interface LedgerHousekeepingOptions {
  db: Kysely<Database>;
  clock: Clock;
  holder: Pick<LedgerHolder, "id" | "keepAlive">;
  credit: Pick<CreditBook, "returnLeases" | "forgetLeases">;
  reservations: Pick<ReservationBook, "forgetResolved">;
  /** Period of the loop, ms. */
  tickMs: number;
  /** Balance roll-up period, ms. */
  rollupIntervalMs: number;
  /** Holders silent this long are recovered (checked every half of it), ms. */
  holderStaleMs: number;
  onError: (error: unknown) => void;
}

/** Starts the loop (first tick after `tickMs`); `stop()` cancels the next tick. */
export function startLedgerHousekeeping(o: LedgerHousekeepingOptions): { stop(): void } {
  const { db, clock, holder, credit, reservations, tickMs, rollupIntervalMs, holderStaleMs, onError } = o;
  let stopped = false;
  let lastRollupMs = clock.nowMs();
  let lastRecoverMs = clock.nowMs();
  let cancelTick: () => void = () => {};
  const tick = async () => {
    try {
      if (!(await holder.keepAlive())) {
        // Recovery elsewhere closed us (we were silent longer than holderStaleMs): our leases are gone.
        credit.forgetLeases();
      }
      credit.returnLeases(false);
      const now = clock.nowMs();
      // Start-up recovery cannot see a predecessor killed moments ago (its heartbeat is still fresh), so every
      // process keeps recovering holders that went silent; otherwise their reservations stay open until the
      // next restart and `ledger verify` reports them as stale.
      if (now - lastRecoverMs >= holderStaleMs / 2) {
        lastRecoverMs = now;
        await recoverDeadHolders(db, { holderStaleMs, excludeHolderId: holder.id });
      }
      reservations.forgetResolved(now);
      if (now - lastRollupMs >= rollupIntervalMs) {
        lastRollupMs = now;
        await rollupBalances(db, {
          onAccountFailed: (id, reason) => onError(new Error(`balance roll-up left account ${id} behind: ${reason}`)),
        });
      }
    } catch (e) {
      onError(e);
    }
    if (!stopped) cancelTick = clock.setTimeout(() => void tick(), tickMs);
  };
  cancelTick = clock.setTimeout(() => void tick(), tickMs);
  return {
    stop() {
      stopped = true;
      cancelTick();
    },
  };
}
