/**
 * The settle path: charge the exact cost of a request's usage, clamped to its reservation, split it into the
 * provider's credit and the platform fee, and give the rest of the hold back to its lease. The request moves off
 * `reserved` exactly once in memory (a duplicate returns the first settlement, or answers from the database once
 * this process has forgotten the request); then its row and entries are queued for the next group commit, and
 * the caller waits at most `durableWaitMs` for them to be durable (not at all while the writer is degraded).
 * Money rules (README): debit ≤ reservation; fee = floor(debit × bps / 10 000); consumer debit = credit + fee.
 */
import type { Kysely } from "kysely";
import { CoordinatorError } from "../errors/coordinator-error.js";
import type { Clock } from "../util/clock.js";
import { trackWrite, type CreditBook } from "./credit-book.js";
import type { EntryWriter } from "./entry-writer.js";
import type { PriceBook } from "./price-book.js";
import { costMicroUsd, splitDebit, type PricingPolicy } from "./pricing.js";
import type { ReservationBook } from "./reservation-book.js";
import type { Database } from "./schema.js";
import { countSettlement } from "./settlement-metrics.js";
import { timeout } from "../util/timeout.js";
import type { Ledger, Settlement, SettleInput } from "./types.js";

export interface SettlePathOptions {
  db: Kysely<Database>;
  clock: Clock;
  credit: CreditBook;
  reservations: ReservationBook;
  /** Settlements are queued here; while it is `degraded`, settle does not wait for durability. */
  writer: Pick<EntryWriter, "write" | "degraded">;
  prices: PriceBook;
  policy: PricingPolicy;
  /** How long settle waits for its write to be durable before returning anyway, ms. */
  durableWaitMs: number;
}

/** A settlement that charged nothing and refunded the whole reservation (the request was released). */
export function zeroSettlement(requestId: string, reserved: bigint): Settlement {
  return {
    requestId,
    consumerDebitMicroUsd: 0n,
    providerCreditMicroUsd: 0n,
    platformFeeMicroUsd: 0n,
    refundedMicroUsd: reserved,
  };
}

/** Creates `Ledger.settle`: exactly once per request id, however often called. */
export function createSettlePath(o: SettlePathOptions): Ledger["settle"] {
  const { db, clock, credit, reservations, writer, prices, policy, durableWaitMs } = o;

  async function settle(input: SettleInput): Promise<Settlement> {
    const rec = reservations.get(input.requestId);
    if (!rec) return settlementFromDatabase(input.requestId);
    if (rec.state === "settled") return rec.settlement;
    if (rec.state === "released") return zeroSettlement(input.requestId, rec.reserved);
    const acct = credit.cachedAccount(rec.accountId);
    const tier = acct?.meta.tier ?? "consumer";
    const feeBps = acct?.meta.platformFeeBps ?? 0;
    const price = await prices.price(rec.model).catch(() => policy.fallback);
    const cost = costMicroUsd(price, input.usage.promptTokens, input.usage.completionTokens, tier, policy);
    // Never charge beyond the reservation: the lease only held that much (Go clamps the same way). A self-served
    // request reserved zero, so it settles at zero here too.
    const debit = cost < rec.reserved ? cost : rec.reserved;
    const { providerCreditMicroUsd, platformFeeMicroUsd } = splitDebit(debit, feeBps);
    const settlement: Settlement = {
      requestId: input.requestId,
      consumerDebitMicroUsd: debit,
      providerCreditMicroUsd,
      platformFeeMicroUsd,
      refundedMicroUsd: rec.reserved - debit,
    };
    const existing = reservations.get(input.requestId);
    if (existing !== rec) return settle(input); // resolved while we awaited the price
    reservations.set(input.requestId, { state: "settled", settlement, reserved: rec.reserved, atMs: clock.nowMs() });
    credit.resolveHold(rec, debit);
    countSettlement(rec.model, input.providerId, input.usage, settlement);
    // Queued ahead of the settlement (one writer, in order): usually both land in one statement.
    reservations.record(input.requestId, rec);
    const written = trackWrite(
      rec.lease,
      writer.write({
        kind: "settle",
        requestId: input.requestId,
        debitMicroUsd: debit,
        providerCreditMicroUsd,
        platformFeeMicroUsd,
        providerAccountId: input.providerAccountId,
        providerId: input.providerId,
        promptTokens: input.usage.promptTokens,
        completionTokens: input.usage.completionTokens,
        reasoningTokens: input.usage.reasoningTokens,
      }),
    );
    if (!writer.degraded) await timeout(clock, written, durableWaitMs);
    return settlement;
  }

  /** Duplicate settle after this process forgot the request (restart, retention): answer from the row. */
  async function settlementFromDatabase(requestId: string): Promise<Settlement> {
    const row = await db
      .selectFrom("ledger_requests")
      .selectAll()
      .where("request_id", "=", requestId)
      .executeTakeFirst();
    if (!row) throw new CoordinatorError("internal", `settle for unknown request ${requestId}`);
    if (row.state === "settled") {
      return {
        requestId,
        consumerDebitMicroUsd: row.consumer_debit_micro_usd,
        providerCreditMicroUsd: row.provider_credit_micro_usd,
        platformFeeMicroUsd: row.platform_fee_micro_usd,
        refundedMicroUsd: row.reserved_micro_usd - row.consumer_debit_micro_usd,
      };
    }
    if (row.state === "released") return zeroSettlement(requestId, row.reserved_micro_usd);
    throw new CoordinatorError("internal", `request ${requestId} is reserved by another ledger process`);
  }

  return settle;
}
