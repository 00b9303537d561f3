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
 *
 * This file owns the options (their defaults are filled in here, once) and the composition of the parts:
 * - `ledger-holder.ts`: this process's `ledger_holders` row (its id tags every lease and reservation);
 * - `credit-book.ts`: the lease/credit side: account and key metadata, spend, credit leases;
 * - `reservation-book.ts`: the in-memory reservation book, exactly once per request id;
 * - `reserve-path.ts`, `settle-path.ts`, `release-path.ts`: the three `Ledger` operations;
 * - `entry-writer.ts`: group commit of every durable change;
 * - `ledger-housekeeping.ts`: heartbeat, lease returns, recovery, retention and roll-up, off the request path.
 */
import type { Kysely } from "kysely";
import { systemClock, type Clock } from "../util/clock.js";
import type { Ledger } from "./types.js";
import type { AccountStore, LimitStore, LimitSubject, UsageSummary } from "../accounts/types.js";
import type { Database } from "./schema.js";
import { defaultPricingPolicy, type PricingPolicy } from "./pricing.js";
import { PriceBook, type DefaultPrices } from "./price-book.js";
import { EntryWriter } from "./entry-writer.js";
import type { WriteOp } from "./write-op.js";
import { recoverDeadHolders, type RecoveryReport } from "./recovery.js";
import { createAccountStore, getUsage } from "./account-store.js";
import { createLimitStore } from "./limit-overrides.js";
import type { ApiKeyCacheLimits } from "./api-key-cache.js";
import { LedgerHolder } from "./ledger-holder.js";
import { CreditBook } from "./credit-book.js";
import { ReservationBook } from "./reservation-book.js";
import { createReservePath } from "./reserve-path.js";
import { createSettlePath } from "./settle-path.js";
import { createReleasePath } from "./release-path.js";
import { startLedgerHousekeeping } from "./ledger-housekeeping.js";
import { timeout } from "../util/timeout.js";

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

/** Creates the ledger, account store and housekeeping loop for one coordinator process. */
export async function createPostgresLedger(options: PostgresLedgerOptions): Promise<PostgresLedger> {
  const clock = options.clock ?? systemClock;
  const db = options.db;
  const policy: PricingPolicy = { ...defaultPricingPolicy, ...options.pricing };
  const durableWaitMs = options.durableWaitMs ?? 2_000;
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
  const reservations = new ReservationBook({ writer, resolvedRetentionMs: options.resolvedRetentionMs ?? 600_000 });

  const ledger: Ledger = {
    reserve: createReservePath({
      clock,
      credit,
      reservations,
      writer,
      prices,
      policy,
      holder,
      leaseDrawTimeoutMs: options.leaseDrawTimeoutMs ?? 2_000,
      unavailableRetryAfterMs: options.unavailableRetryAfterMs ?? 1_000,
      onError,
    }),
    recordDispatch: (requestId) => reservations.recordDispatch(requestId),
    settle: createSettlePath({ db, clock, credit, reservations, writer, prices, policy, durableWaitMs }),
    release: createReleasePath({ clock, credit, reservations, writer, durableWaitMs }),
  };

  const housekeeping = startLedgerHousekeeping({
    db,
    clock,
    holder,
    credit,
    reservations,
    tickMs: options.tickMs ?? 1_000,
    rollupIntervalMs: options.rollupIntervalMs ?? 60_000,
    holderStaleMs,
    onError,
  });

  return {
    ledger,
    accounts: createAccountStore({
      db,
      clock,
      prices,
      ...(options.apiKeyCache ? { keyCache: options.apiKeyCache } : {}),
    }),
    limits: createLimitStore(db),
    refreshLimits: (subject) => credit.refreshLimits(subject),
    get holderId() {
      return holder.id;
    },
    recover: (o) =>
      recoverDeadHolders(db, { holderStaleMs: o?.holderStaleMs ?? holderStaleMs, excludeHolderId: holder.id }),
    flush: () => writer.drained(),
    usage: (accountId, sinceMs) => getUsage(db, accountId, sinceMs),
    status: () => ({ degraded: writer.degraded, queuedWrites: writer.queued, leasedAccounts: credit.leasedAccounts() }),
    async close() {
      housekeeping.stop();
      // Bounded: with Postgres down, unwritten entries are left to recovery rather than hanging shutdown.
      await timeout(clock, writer.drained(), durableWaitMs);
      credit.returnLeases(true);
      await timeout(clock, writer.drained(), durableWaitMs);
      writer.close();
      await holder.close().catch(onError);
    },
  };
}
