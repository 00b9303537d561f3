/**
 * The reserve path: price the request's upper bound, check the key's and the account's spend caps, and take the
 * amount from a credit lease this process already holds. Decided from memory: no SQL unless the lease runs low
 * (one lease draw serves thousands of requests, and a background top-up starts at the low watermark so requests
 * rarely wait for it), and nothing is written: the reservation lives in the {@link ReservationBook} until the
 * request reaches a provider. 402 `insufficient_balance` / `spend_cap` is therefore decided without touching a
 * hot row, and while PostgreSQL is down requests keep being served from leased credit; only when a lease is spent
 * and a new one cannot be drawn within `leaseDrawTimeoutMs` is the request shed as `unavailable`.
 */
import type { Clock } from "../util/clock.js";
import { InsufficientBalance, type AccountState, type CreditBook, type KeyState } from "./credit-book.js";
import type { EntryWriter } from "./entry-writer.js";
import type { LedgerHolder } from "./ledger-holder.js";
import type { PriceBook } from "./price-book.js";
import { costMicroUsd, type PricingPolicy } from "./pricing.js";
import type { ReservationBook } from "./reservation-book.js";
import { timeout } from "../util/timeout.js";
import type { Ledger, ReserveInput, ReserveResult } from "./types.js";

export interface ReservePathOptions {
  clock: Clock;
  credit: CreditBook;
  reservations: ReservationBook;
  /** Consulted so a full write queue sheds new reservations. */
  writer: Pick<EntryWriter, "isFull">;
  prices: PriceBook;
  policy: PricingPolicy;
  /** Reservations are tagged with the holder's current id. */
  holder: Pick<LedgerHolder, "id">;
  /** Timeout for a lease draw on the request path, ms. */
  leaseDrawTimeoutMs: number;
  /** `retryAfterMs` given with `unavailable`. */
  unavailableRetryAfterMs: number;
  onError: (error: unknown) => void;
}

/** Creates `Ledger.reserve`: idempotent per request id (a duplicate returns the first reservation). */
export function createReservePath(o: ReservePathOptions): Ledger["reserve"] {
  const { clock, credit, reservations, writer, prices, policy, holder, leaseDrawTimeoutMs, onError } = o;
  const unavailable = (message: string): ReserveResult => ({
    ok: false,
    reason: "unavailable",
    message,
    retryAfterMs: o.unavailableRetryAfterMs,
  });

  return async function reserve(input: ReserveInput): Promise<ReserveResult> {
    const seen = reservations.get(input.requestId);
    if (seen) return { ok: true, reservedMicroUsd: seen.reserved };
    if (writer.isFull()) return unavailable("ledger write queue is full");
    let acct: AccountState | undefined;
    let key: KeyState;
    let need: bigint;
    try {
      acct = await credit.account(input.accountId);
      if (!acct) return { ok: false, reason: "insufficient_balance", message: "unknown account" };
      key = await credit.key(input.keyId);
      need =
        input.selfServed === true
          ? 0n
          : costMicroUsd(
              await prices.price(input.model),
              input.promptTokensUpperBound,
              input.maxOutputTokens,
              acct.meta.tier,
              policy,
            );
    } catch (e) {
      onError(e);
      return unavailable("ledger database unavailable");
    }
    for (let attempt = 0; ; attempt++) {
      const dup = reservations.get(input.requestId);
      if (dup) return { ok: true, reservedMicroUsd: dup.reserved };
      if (key.capMicroUsd !== null && key.spentMicroUsd + key.outstandingMicroUsd + need > key.capMicroUsd) {
        return { ok: false, reason: "spend_cap", message: "this API key's spend cap cannot cover the request" };
      }
      const accountCap = acct.meta.spendCapMicroUsd;
      if (accountCap !== null && acct.spentMicroUsd + acct.outstandingMicroUsd + need > accountCap) {
        return { ok: false, reason: "spend_cap", message: "this account's spend cap cannot cover the request" };
      }
      const lease = credit.pickLease(acct, need);
      if (lease) {
        // Synchronous from here: the decision and its effects happen atomically w.r.t. other requests.
        credit.hold(acct, key, lease, need);
        // Held in memory only: the row is written when the request reaches a provider (recordDispatch).
        reservations.set(input.requestId, {
          state: "reserved",
          accountId: input.accountId,
          keyId: input.keyId,
          holderId: holder.id,
          lease,
          reserved: need,
          model: input.model,
          atMs: clock.nowMs(),
          recorded: false,
        });
        credit.topUpIfLow(input.accountId, acct);
        return { ok: true, reservedMicroUsd: need };
      }
      if (attempt >= 3) return unavailable("credit lease contention; retry");
      try {
        const r = await timeout(
          clock,
          (acct.topUp ?? credit.topUp(input.accountId, acct, need)).then(() => "ok" as const),
          leaseDrawTimeoutMs,
        );
        if (r === "timeout") return unavailable("ledger database slow");
      } catch (e) {
        if (e instanceof InsufficientBalance) {
          if (credit.pickLease(acct, need)) continue;
          // Free, but its ledger row hangs on a credit lease, which an empty account cannot draw.
          if (input.selfServed === true)
            return {
              ok: false,
              reason: "insufficient_balance",
              message:
                "requests to your own machines are free, but the account needs a positive balance to record them; top it up",
            };
          return {
            ok: false,
            reason: "insufficient_balance",
            message: "insufficient balance for this request's maximum cost",
          };
        }
        onError(e);
        return unavailable("ledger database unavailable");
      }
    }
  };
}
