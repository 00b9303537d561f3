/**
 * The lease/credit side of the ledger: what this process knows about each account and API key it serves (tier,
 * fee, spend caps, spend) and the credit leases it holds for them. Every change to a lease's remainder or to an
 * account's or key's outstanding and spent amounts happens here, synchronously, so a reservation's decision and
 * its effects are atomic with respect to other requests; the only SQL is loading metadata and drawing a lease
 * (`lease-sql.ts`), one statement per lease rather than per request. See `README.md` for the bounds.
 */
import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import type { LimitSubject } from "../accounts/types.js";
import type { Clock } from "../util/clock.js";
import type { EntryWriter } from "./entry-writer.js";
import type { LedgerHolder } from "./ledger-holder.js";
import { drawLease, loadAccountMeta, loadKeyMeta, type AccountMeta } from "./lease-sql.js";
import type { Database } from "./schema.js";

/** A credit lease this process holds: money held durably for one account, handed out to requests from memory. */
export interface Lease {
  id: string;
  /** µUSD not yet reserved by a request of this process. */
  remaining: bigint;
  /** Reservations taken from this lease and not yet settled or released. */
  inflight: number;
  /** Queued writes against this lease not yet durable; the lease is only returned once this is zero. */
  pendingWrites: number;
  lastUsedMs: number;
}

/** One account as this process knows it: cached metadata, its leases and its spend (for the spend cap). */
export interface AccountState {
  meta: AccountMeta;
  metaAtMs: number;
  /** Oldest first. */
  leases: Lease[];
  /** The lease draw in flight, if any (single-flight). */
  topUp: Promise<void> | undefined;
  /** Settled spend as far as this process knows (durable spend, plus its own settles since): for the spend cap. */
  spentMicroUsd: bigint;
  /** Reserved by this process and not yet settled or released: counts against the spend cap. */
  outstandingMicroUsd: bigint;
}

/** One API key as this process knows it: its spend cap and spend. */
export interface KeyState {
  capMicroUsd: bigint | null;
  spentMicroUsd: bigint;
  outstandingMicroUsd: bigint;
  loadedAtMs: number;
}

/** A lease draw found less available money than the request needs. */
export class InsufficientBalance extends Error {}

/** What a reservation holds, as {@link CreditBook.resolveHold} needs it. */
export interface Hold {
  accountId: string;
  keyId: string;
  lease: Lease;
  reserved: bigint;
}

export interface CreditBookOptions {
  db: Kysely<Database>;
  clock: Clock;
  /** Leases are drawn under the holder's current id. */
  holder: Pick<LedgerHolder, "id">;
  /** Returned leases are closed through the group-commit writer. */
  writer: Pick<EntryWriter, "write">;
  /** Size of one lease draw, µUSD. */
  leaseMicroUsd: bigint;
  /** Top up in the background when the leased remainder drops below this many thousandths of a lease. */
  lowWatermarkPerMille: bigint;
  /** How far below zero a balance may be leased, µUSD. */
  overdraftMicroUsd: bigint;
  /** Return a lease nobody used for this long, ms. */
  leaseIdleMs: number;
  /** Cache account and key metadata this long, ms. */
  metaTtlMs: number;
  onError: (error: unknown) => void;
}

/** Queues a write against `lease`, tracking it so the lease is only returned after its writes are durable. */
export function trackWrite(lease: Lease | undefined, p: Promise<void>): Promise<void> {
  if (!lease) return p;
  lease.pendingWrites++;
  return p.then(() => void lease.pendingWrites--);
}

function remainingOf(acct: AccountState): bigint {
  return acct.leases.reduce((s, l) => s + l.remaining, 0n);
}

/** The accounts, keys and credit leases of one ledger process. */
export class CreditBook {
  readonly #o: CreditBookOptions;
  readonly #accounts = new Map<string, AccountState>();
  readonly #keys = new Map<string, KeyState>();

  constructor(options: CreditBookOptions) {
    this.#o = options;
  }

  // Account and key metadata are refreshed every `metaTtlMs`. A refresh that fails keeps what this process
  // already knows (tier, fee, cap and its own spend) for another TTL, so an outage longer than the TTL does not
  // turn accounts with leased credit away: the lease, not the metadata, bounds what is served meanwhile.

  /** The account, loaded or refreshed if its metadata is older than `metaTtlMs`; undefined if it does not exist. */
  async account(accountId: string): Promise<AccountState | undefined> {
    const { db, clock, metaTtlMs, onError } = this.#o;
    const accounts = this.#accounts;
    const cached = accounts.get(accountId);
    if (cached && clock.nowMs() - cached.metaAtMs < metaTtlMs) return cached;
    let meta: AccountMeta | undefined;
    try {
      meta = await loadAccountMeta(db, accountId);
    } catch (e) {
      if (!cached) throw e;
      onError(e);
      cached.metaAtMs = clock.nowMs();
      return cached;
    }
    if (!meta) return undefined;
    const again = accounts.get(accountId);
    if (again) {
      again.meta = meta;
      again.metaAtMs = clock.nowMs();
      // As for keys: durable spend may have grown through other processes; ours is in it or still queued.
      if (meta.spentMicroUsd > again.spentMicroUsd) again.spentMicroUsd = meta.spentMicroUsd;
      return again;
    }
    const fresh: AccountState = {
      meta,
      metaAtMs: clock.nowMs(),
      leases: [],
      topUp: undefined,
      spentMicroUsd: meta.spentMicroUsd,
      outstandingMicroUsd: 0n,
    };
    accounts.set(accountId, fresh);
    return fresh;
  }

  /** The key, loaded or refreshed if older than `metaTtlMs`. */
  async key(keyId: string): Promise<KeyState> {
    const { db, clock, metaTtlMs, onError } = this.#o;
    const keys = this.#keys;
    const cached = keys.get(keyId);
    if (cached && clock.nowMs() - cached.loadedAtMs < metaTtlMs) return cached;
    let meta: Awaited<ReturnType<typeof loadKeyMeta>>;
    try {
      meta = await loadKeyMeta(db, keyId);
    } catch (e) {
      if (!cached) throw e;
      onError(e);
      cached.loadedAtMs = clock.nowMs();
      return cached;
    }
    const again = keys.get(keyId);
    if (again) {
      // Durable spend may have grown from other processes; our own unflushed settles are already in it or queued.
      again.capMicroUsd = meta.spendCapMicroUsd;
      if (meta.spentMicroUsd > again.spentMicroUsd) again.spentMicroUsd = meta.spentMicroUsd;
      again.loadedAtMs = clock.nowMs();
      return again;
    }
    const fresh: KeyState = {
      capMicroUsd: meta.spendCapMicroUsd,
      spentMicroUsd: meta.spentMicroUsd,
      outstandingMicroUsd: 0n,
      loadedAtMs: clock.nowMs(),
    };
    keys.set(keyId, fresh);
    return fresh;
  }

  /** The account as already cached, without loading it. */
  cachedAccount(accountId: string): AccountState | undefined {
    return this.#accounts.get(accountId);
  }

  /** A lease that can cover `need`, oldest first, so older leases drain and can be returned. */
  pickLease(acct: AccountState, need: bigint): Lease | undefined {
    return acct.leases.find((l) => l.remaining >= need);
  }

  /** Takes `need` from `lease` for one request and counts it against the key's and the account's caps. Synchronous. */
  hold(acct: AccountState, key: KeyState, lease: Lease, need: bigint): void {
    lease.remaining -= need;
    lease.inflight++;
    lease.lastUsedMs = this.#o.clock.nowMs();
    key.outstandingMicroUsd += need;
    acct.outstandingMicroUsd += need;
  }

  /** Starts a background lease draw if the account's leased remainder is below the low watermark. */
  topUpIfLow(accountId: string, acct: AccountState): void {
    if (remainingOf(acct) * 1000n < this.#o.leaseMicroUsd * this.#o.lowWatermarkPerMille && !acct.topUp) {
      void this.topUp(accountId, acct, 1n).catch(() => {});
    }
  }

  /** Draws one lease for the account (single-flight). Throws InsufficientBalance or a database error. */
  topUp(accountId: string, acct: AccountState, minimum: bigint): Promise<void> {
    const { db, clock, holder, leaseMicroUsd: leaseSize, overdraftMicroUsd: overdraft } = this.#o;
    acct.topUp ??= (async () => {
      try {
        const desired = leaseSize > minimum ? leaseSize : minimum;
        const r = await drawLease(db, {
          leaseId: `l_${randomUUID()}`,
          accountId,
          holderId: holder.id,
          desiredMicroUsd: desired,
          minimumMicroUsd: minimum,
          overdraftMicroUsd: overdraft,
        });
        if (r.kind !== "granted") throw new InsufficientBalance(r.kind);
        acct.leases.push({
          id: r.leaseId,
          remaining: r.amountMicroUsd,
          inflight: 0,
          pendingWrites: 0,
          lastUsedMs: clock.nowMs(),
        });
      } finally {
        acct.topUp = undefined;
      }
    })();
    return acct.topUp;
  }

  /** Ends a hold: `debit` is spent, the rest of the reservation goes back to its lease. Synchronous. */
  resolveHold(rec: Hold, debit: bigint): void {
    rec.lease.remaining += rec.reserved - debit;
    rec.lease.inflight--;
    rec.lease.lastUsedMs = this.#o.clock.nowMs();
    const key = this.#keys.get(rec.keyId);
    if (key) {
      key.outstandingMicroUsd -= rec.reserved;
      key.spentMicroUsd += debit;
    }
    const acct = this.#accounts.get(rec.accountId);
    if (acct) {
      acct.outstandingMicroUsd -= rec.reserved;
      acct.spentMicroUsd += debit;
    }
  }

  /** Returns leases with nothing in flight and nothing unwritten: retired ones, idle ones, or all (`everything`). */
  returnLeases(everything: boolean): void {
    const { clock, writer, leaseIdleMs } = this.#o;
    const now = clock.nowMs();
    for (const acct of this.#accounts.values()) {
      const newest = acct.leases[acct.leases.length - 1];
      acct.leases = acct.leases.filter((l) => {
        const drained = l.inflight === 0 && l.pendingWrites === 0;
        const retire = everything || l !== newest || now - l.lastUsedMs >= leaseIdleMs;
        if (!(drained && retire)) return true;
        void writer.write({ kind: "close_lease", leaseId: l.id });
        return false;
      });
    }
  }

  /** Drops every lease without returning it: recovery elsewhere already closed them (this holder was recovered). */
  forgetLeases(): void {
    for (const a of this.#accounts.values()) a.leases = [];
  }

  /** Makes the next reservation re-read the subject's spend cap. */
  refreshLimits(subject: LimitSubject): void {
    if (subject.kind === "account") {
      const a = this.#accounts.get(subject.accountId);
      if (a) a.metaAtMs = -Infinity;
    } else {
      const k = this.#keys.get(subject.keyId);
      if (k) k.loadedAtMs = -Infinity;
    }
  }

  /** How many accounts this process holds at least one lease for. */
  leasedAccounts(): number {
    return [...this.#accounts.values()].filter((a) => a.leases.length > 0).length;
  }
}
