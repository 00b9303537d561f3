/**
 * The contention-free ledger: reserve/settle/release decided from memory against per-account **credit leases**,
 * written to Postgres by group commit. See `README.md` in this folder for the full design and its bounds.
 *
 * Request path, for one account at any concurrency:
 * - `reserve` prices the upper bound, checks the key's spend cap, and takes the amount from a lease this process
 *   already holds. No SQL unless the lease runs low (one lease draw serves thousands of requests, and a
 *   background top-up starts at the low watermark so requests rarely wait for it). Nothing is written yet.
 * - `recordDispatch` (the request reached a provider) queues the reservation's row. A request refused before
 *   dispatch (a queue-full 429, no capacity, cancelled while queued) is released without ever writing a row: the
 *   credit it held was only ever in memory, inside a lease whose durable hold already covers it, so a crash
 *   returns it with the lease (recovery closes the lease; there is no row to release).
 * - `settle` / `release` move the request from `reserved` exactly once in memory, then queue the row change and
 *   entries for the next group commit and wait (at most `durableWaitMs`) for it to be durable.
 * No request ever waits on a row lock held by another request; the only shared-row statement is the lease draw.
 */
import type { Kysely } from "kysely";
import { CoordinatorError } from "../errors/coordinator-error.js";
import { systemClock, type Clock } from "../util/clock.js";
import type { Ledger, ReserveInput, ReserveResult, Settlement, SettleInput } from "./types.js";
import type { AccountStore, LimitStore, LimitSubject, UsageSummary } from "../accounts/types.js";
import type { Database } from "./schema.js";
import { costMicroUsd, defaultPricingPolicy, splitDebit, type PricingPolicy } from "./pricing.js";
import { PriceBook, type DefaultPrices } from "./price-book.js";
import { EntryWriter, type WriteOp } from "./entry-writer.js";
import { CreditBook, InsufficientBalance, trackWrite as track, type AccountState, type KeyState, type Lease } from "./credit-book.js";
import { LedgerHolder } from "./ledger-holder.js";
import { timeout as timeoutOn } from "./timeout.js";
import { recoverDeadHolders, type RecoveryReport } from "./recovery.js";
import { rollupBalances } from "./rollup.js";
import { countSettlement } from "./settlement-metrics.js";
import { createAccountStore, getUsage } from "./account-store.js";
import { createLimitStore } from "./limit-overrides.js";
import type { ApiKeyCacheLimits } from "./api-key-cache.js";

export interface PostgresLedgerOptions {
  db: Kysely<Database>;
  /** Default prices per model (the catalog's); `model_prices` rows override them. */
  defaultPrices?: DefaultPrices;
  pricing?: Partial<PricingPolicy>;
  /** Size of one credit lease, µUSD. Larger = fewer lease draws, more money parked per process. Default 2_000_000 ($2). */
  leaseMicroUsd?: bigint;
  /** Start a background top-up when an account's leased remainder drops below this fraction of a lease. Default 0.5. */
  leaseLowWatermark?: number;
  /** How far below zero an account's balance may be leased, µUSD. Default 0 (never negative). */
  overdraftMicroUsd?: bigint;
  /** Return a lease nobody used for this long, ms. Default 10_000. */
  leaseIdleMs?: number;
  /** Housekeeping period (heartbeat, lease returns, pruning), ms. Default 1_000. */
  tickMs?: number;
  /** Balance roll-up period, ms. Default 60_000. */
  rollupIntervalMs?: number;
  /** How long settle/release wait for their write to be durable before returning anyway, ms. Default 2_000. */
  durableWaitMs?: number;
  /** Timeout for a lease draw on the request path, ms; beyond it the request is shed as `unavailable`. Default 2_000. */
  leaseDrawTimeoutMs?: number;
  /** `retryAfterMs` given with `unavailable`. Default 1_000. */
  unavailableRetryAfterMs?: number;
  /** Keep resolved request ids in memory this long for idempotent duplicates, ms. Default 600_000. */
  resolvedRetentionMs?: number;
  /** Cache account tier/fee and key caps this long, ms. Default 30_000. */
  metaTtlMs?: number;
  /** Max queued writes before new reservations are shed. Default 100_000. */
  maxQueuedWrites?: number;
  /** Ledger holders silent for this long are recovered by `recover()`, ms. Default 60_000. */
  holderStaleMs?: number;
  /** API-key cache bounds: TTL, negative TTL, stale-if-error window, sizes (see ApiKeyCache). Defaults there. */
  apiKeyCache?: Partial<ApiKeyCacheLimits>;
  clock?: Clock;
  onError?: (error: unknown) => void;
  /** A write PostgreSQL refused deterministically was moved to `ledger_quarantine` (see EntryWriter). */
  onQuarantine?: (op: WriteOp, error: unknown) => void;
}

export interface PostgresLedger {
  ledger: Ledger;
  accounts: AccountStore;
  /** Per-account and per-key limit overrides (`SetLimits` / `GetLimits`). */
  limits: LimitStore;
  /**
   * Forgets this process's cached spend cap of an account or key (after `SetLimits` here), so the next
   * reservation reads it again; other processes read it within `metaTtlMs`.
   */
  refreshLimits(subject: LimitSubject): void;
  /** This process's holder id (leases and reservations are tagged with it). */
  holderId: string;
  /** Resolves open reservations and returns leases of holders that died (kill -9); exactly once. */
  recover(options?: { holderStaleMs?: number }): Promise<RecoveryReport>;
  /** Resolves when every queued write is durable. */
  flush(): Promise<void>;
  /** Usage for `GET /v1/me/usage`. */
  usage(accountId: string, sinceMs?: number): Promise<UsageSummary>;
  /** Ledger health for /health and metrics. */
  status(): { degraded: boolean; queuedWrites: number; leasedAccounts: number };
  /** Flushes, returns every lease, closes the holder. Does not close `db`. */
  close(): Promise<void>;
}

type RequestRecord =
  /** `recorded`: the reservation's row has been queued for writing (the request reached a provider, or settled). */
  | { state: "reserved"; accountId: string; keyId: string; holderId: string; lease: Lease; reserved: bigint; model: string; atMs: number; recorded: boolean }
  | { state: "settled"; settlement: Settlement; reserved: bigint; atMs: number }
  | { state: "released"; reserved: bigint; atMs: number };

/** Creates the ledger, account store and housekeeping loop for one coordinator process. */
export async function createPostgresLedger(options: PostgresLedgerOptions): Promise<PostgresLedger> {
  const clock = options.clock ?? systemClock;
  const db = options.db;
  const policy: PricingPolicy = { ...defaultPricingPolicy, ...options.pricing };
  const durableWaitMs = options.durableWaitMs ?? 2_000;
  const leaseDrawTimeoutMs = options.leaseDrawTimeoutMs ?? 2_000;
  const retryAfterMs = options.unavailableRetryAfterMs ?? 1_000;
  const retentionMs = options.resolvedRetentionMs ?? 600_000;
  const holderStaleMs = options.holderStaleMs ?? 60_000;
  const onError = options.onError ?? (() => {});

  const prices = new PriceBook({ db, clock, defaults: options.defaultPrices ?? {}, policy });
  const writer = new EntryWriter({
    db,
    clock,
    maxQueued: options.maxQueuedWrites ?? 100_000,
    onError,
    ...(options.onQuarantine ? { onQuarantine: options.onQuarantine } : {}),
  });
  const holder = await LedgerHolder.register(db);
  const credit = new CreditBook({
    db,
    clock,
    holder,
    writer,
    leaseMicroUsd: options.leaseMicroUsd ?? 2_000_000n,
    lowWatermarkPerMille: BigInt(Math.round((options.leaseLowWatermark ?? 0.5) * 1000)),
    overdraftMicroUsd: options.overdraftMicroUsd ?? 0n,
    leaseIdleMs: options.leaseIdleMs ?? 10_000,
    metaTtlMs: options.metaTtlMs ?? 30_000,
    onError,
  });
  const requests = new Map<string, RequestRecord>();

  const unavailable = (message: string): ReserveResult => ({ ok: false, reason: "unavailable", message, retryAfterMs });

  const timeout = <T>(p: Promise<T>, ms: number) => timeoutOn(clock, p, ms);

  const ledger: Ledger = {
    async reserve(input: ReserveInput): Promise<ReserveResult> {
      const seen = requests.get(input.requestId);
      if (seen) return { ok: true, reservedMicroUsd: seen.reserved };
      if (writer.isFull()) return unavailable("ledger write queue is full");
      let acct: AccountState | undefined;
      let key: KeyState;
      let need: bigint;
      try {
        acct = await credit.account(input.accountId);
        if (!acct) return { ok: false, reason: "insufficient_balance", message: "unknown account" };
        key = await credit.key(input.keyId);
        need = input.selfServed === true ? 0n : costMicroUsd(await prices.price(input.model), input.promptTokensUpperBound, input.maxOutputTokens, acct.meta.tier, policy);
      } catch (e) {
        onError(e);
        return unavailable("ledger database unavailable");
      }
      for (let attempt = 0; ; attempt++) {
        const dup = requests.get(input.requestId);
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
          requests.set(input.requestId, { state: "reserved", accountId: input.accountId, keyId: input.keyId, holderId: holder.id, lease, reserved: need, model: input.model, atMs: clock.nowMs(), recorded: false });
          credit.topUpIfLow(input.accountId, acct);
          return { ok: true, reservedMicroUsd: need };
        }
        if (attempt >= 3) return unavailable("credit lease contention; retry");
        try {
          const r = await timeout((acct.topUp ?? credit.topUp(input.accountId, acct, need)).then(() => "ok" as const), leaseDrawTimeoutMs);
          if (r === "timeout") return unavailable("ledger database slow");
        } catch (e) {
          if (e instanceof InsufficientBalance) {
            if (credit.pickLease(acct, need)) continue;
            // Free, but its ledger row hangs on a credit lease, which an empty account cannot draw.
            if (input.selfServed === true) return { ok: false, reason: "insufficient_balance", message: "requests to your own machines are free, but the account needs a positive balance to record them; top it up" };
            return { ok: false, reason: "insufficient_balance", message: "insufficient balance for this request's maximum cost" };
          }
          onError(e);
          return unavailable("ledger database unavailable");
        }
      }
    },

    recordDispatch(requestId: string): void {
      const rec = requests.get(requestId);
      if (rec?.state === "reserved") record(requestId, rec);
    },

    async settle(input: SettleInput): Promise<Settlement> {
      const rec = requests.get(input.requestId);
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
      const settlement: Settlement = { requestId: input.requestId, consumerDebitMicroUsd: debit, providerCreditMicroUsd, platformFeeMicroUsd, refundedMicroUsd: rec.reserved - debit };
      const existing = requests.get(input.requestId);
      if (existing !== rec) return ledger.settle(input); // resolved while we awaited the price
      requests.set(input.requestId, { state: "settled", settlement, reserved: rec.reserved, atMs: clock.nowMs() });
      credit.resolveHold(rec, debit);
      countSettlement(rec.model, input.providerId, input.usage, settlement);
      // Queued ahead of the settlement (one writer, in order): usually both land in one statement.
      record(input.requestId, rec);
      const written = track(rec.lease, writer.write({
        kind: "settle", requestId: input.requestId, debitMicroUsd: debit, providerCreditMicroUsd, platformFeeMicroUsd,
        providerAccountId: input.providerAccountId, providerId: input.providerId,
        promptTokens: input.usage.promptTokens, completionTokens: input.usage.completionTokens, reasoningTokens: input.usage.reasoningTokens,
      }));
      if (!writer.degraded) await timeout(written, durableWaitMs);
      return settlement;
    },

    async release(requestId: string, reason: string): Promise<void> {
      const rec = requests.get(requestId);
      if (!rec || rec.state !== "reserved") return;
      requests.set(requestId, { state: "released", reserved: rec.reserved, atMs: clock.nowMs() });
      credit.resolveHold(rec, 0n);
      // Never dispatched (refused or cancelled before reaching a provider): nothing durable to undo.
      if (!rec.recorded) return;
      const written = track(rec.lease, writer.write({ kind: "release", requestId, reason }));
      if (!writer.degraded) await timeout(written, durableWaitMs);
    },
  };

  /** Queues the reservation's row, once. */
  function record(requestId: string, rec: Extract<RequestRecord, { state: "reserved" }>): void {
    if (rec.recorded) return;
    rec.recorded = true;
    void track(rec.lease, writer.write({ kind: "reserve", requestId, accountId: rec.accountId, keyId: rec.keyId, leaseId: rec.lease.id, holderId: rec.holderId, model: rec.model, reservedMicroUsd: rec.reserved }));
  }

  function zeroSettlement(requestId: string, reserved: bigint): Settlement {
    return { requestId, consumerDebitMicroUsd: 0n, providerCreditMicroUsd: 0n, platformFeeMicroUsd: 0n, refundedMicroUsd: reserved };
  }

  /** Duplicate settle after this process forgot the request (restart, retention): answer from the row. */
  async function settlementFromDatabase(requestId: string): Promise<Settlement> {
    const row = await db.selectFrom("ledger_requests").selectAll().where("request_id", "=", requestId).executeTakeFirst();
    if (!row) throw new CoordinatorError("internal", `settle for unknown request ${requestId}`);
    if (row.state === "settled") {
      return { requestId, consumerDebitMicroUsd: row.consumer_debit_micro_usd, providerCreditMicroUsd: row.provider_credit_micro_usd, platformFeeMicroUsd: row.platform_fee_micro_usd, refundedMicroUsd: row.reserved_micro_usd - row.consumer_debit_micro_usd };
    }
    if (row.state === "released") return zeroSettlement(requestId, row.reserved_micro_usd);
    throw new CoordinatorError("internal", `request ${requestId} is reserved by another ledger process`);
  }

  // Housekeeping: heartbeat, return drained/idle leases, forget old resolved requests, roll balances up.
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
      for (const [id, r] of requests) if (r.state !== "reserved" && now - r.atMs > retentionMs) requests.delete(id);
      if (now - lastRollupMs >= (options.rollupIntervalMs ?? 60_000)) {
        lastRollupMs = now;
        await rollupBalances(db, { onAccountFailed: (id, reason) => onError(new Error(`balance roll-up left account ${id} behind: ${reason}`)) });
      }
    } catch (e) {
      onError(e);
    }
    if (!stopped) cancelTick = clock.setTimeout(() => void tick(), options.tickMs ?? 1_000);
  };
  cancelTick = clock.setTimeout(() => void tick(), options.tickMs ?? 1_000);

  return {
    ledger,
    accounts: createAccountStore({ db, clock, prices, ...(options.apiKeyCache ? { keyCache: options.apiKeyCache } : {}) }),
    limits: createLimitStore(db),
    refreshLimits: (subject) => credit.refreshLimits(subject),
    get holderId() {
      return holder.id;
    },
    recover: (o) => recoverDeadHolders(db, { holderStaleMs: o?.holderStaleMs ?? holderStaleMs, excludeHolderId: holder.id }),
    flush: () => writer.drained(),
    usage: (accountId, sinceMs) => getUsage(db, accountId, sinceMs),
    status: () => ({ degraded: writer.degraded, queuedWrites: writer.queued, leasedAccounts: credit.leasedAccounts() }),
    async close() {
      stopped = true;
      cancelTick();
      // Bounded: with Postgres down, unwritten entries are left to recovery rather than hanging shutdown.
      await timeout(writer.drained(), durableWaitMs);
      credit.returnLeases(true);
      await timeout(writer.drained(), durableWaitMs);
      writer.close();
      await holder.close().catch(onError);
    },
  };
}
