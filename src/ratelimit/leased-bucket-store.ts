/**
 * A {@link BucketStore} whose buckets are shared by every coordinator process (`RATE_LIMIT_STORE=postgres`).
 *
 * Each process holds a *grant* per bucket key, drawn from the shared bucket (a {@link LimitLeaseSource}: one
 * PostgreSQL row per key) and spent in memory, synchronously, exactly like {@link MemoryBucketStore}: `takeAll`
 * is all or nothing over the account's and the key's buckets and never waits. A grant is sized to last
 * `grantTargetMs` of the key's recent usage on this process and refreshed in the background when it covers less
 * than `refreshBelowMs`, so the hot path rarely meets an empty grant; when it does, {@link replenish} makes one
 * round trip for the short buckets and the limiter retries, up to `MAX_REPLENISH_ROUNDS` exchanges, before
 * answering 429.
 *
 * Why the cluster never over-admits: grants come out of the shared bucket, which refills at the account's rate
 * only while bucket + outstanding leases stay under the burst (migration 0005). Why it barely under-admits:
 * tokens stranded in idle grants are bounded (N × grant) and come back after `idleReturnMs`, at shutdown, or
 * after a crash when the lease goes stale (`2 × grantTtlMs`).
 *
 * Reconciliation: debt (an over-run) lowers the local grant, possibly below zero, and moves into the shared
 * bucket at the next exchange, where refill repays it before anything more is granted; a give-back is sent
 * with the next exchange and lands in the shared bucket, capped at the burst like `adjust` in token-bucket.ts.
 *
 * PostgreSQL down or slow (an exchange fails or exceeds `drawTimeoutMs`): keep serving from the grants held
 * until they are spent or expire (`grantTtlMs`), then **fail open at `failOpenShare`** (1/N) of every limit in
 * memory, the pre-shared behaviour, with one warn log line when it starts and one when the database is back.
 * Chosen over failing closed because a rate limiter is protection, not accounting: money stays exact in the
 * ledger, and an outage of the shared buckets should not turn into an outage of the API.
 */
import { count } from "../telemetry/metrics.js";
import type { Cancel, Clock } from "../util/clock.js";
import { timeout } from "../util/timeout.js";
import { MemoryBucketStore, type BucketStore, type TakeAllResult, type TakeRequest } from "./bucket-store.js";
import type { DrawResult, LimitLeaseSource } from "./lease-source.js";
import {
  addUsage,
  defaultLeaseTuning,
  grantSize,
  newUsage,
  runningLow,
  usageRate,
  type LeaseTuning,
  type Usage,
} from "./lease-sizing.js";
import {
  admissionNeed,
  fullBucket,
  isUnlimited,
  msUntilLevel,
  refill,
  take,
  type Bucket,
  type BucketLimits,
} from "./token-bucket.js";

/** How a leased store is built. */
export interface LeasedBucketStoreOptions {
  source: LimitLeaseSource;
  /** This process's lease identity (unique per process run). */
  holderId: string;
  clock: Clock;
  /** Fraction of every limit enforced in memory while the shared buckets are unreachable: 1/N for N processes. */
  failOpenShare: number;
  tuning?: Partial<LeaseTuning>;
  /** Structured warnings (fail-open start and end, failed returns). */
  warn?: (message: string, fields: Record<string, unknown>) => void;
}

/** This process's grant from one shared bucket. */
interface Grant {
  limits: BucketLimits;
  /** Local tokens; negative is debt not yet moved into the shared bucket. */
  level: number;
  /** When the shared bucket last renewed the lease (a grant older than `grantTtlMs` may not be spent). */
  renewedMs: number;
  /** Units spent or wanted recently (sizes the next grant). */
  usage: Usage;
  lastUseMs: number;
  lastDrawMs: number;
  /** Given-back tokens waiting for the next exchange. */
  returned: number;
  /** The shared bucket as last seen (retry hints and headers). */
  shared: Bucket | undefined;
  /** Units of refused requests waiting in {@link LeasedBucketStore.replenish} (an exchange asks for all of them, up to the burst). */
  waiting: number;
  /** The last exchange granted all it asked for (running out then means a spike, not an empty bucket). */
  lastGrantFull: boolean;
  /**
   * This bucket's last exchange failed: it is served from the fail-open share until one of its own exchanges
   * succeeds, even when another bucket's success has ended the store's {@link LeasedBucketStore.failingOpen}
   * (otherwise it would refuse every request until `minDrawIntervalMs` allows it to ask again).
   */
  exchangeFailed: boolean;
  drawing: Promise<void> | undefined;
}

/** See the module comment. */
export class LeasedBucketStore implements BucketStore {
  readonly #o: LeasedBucketStoreOptions;
  readonly #t: LeaseTuning;
  readonly #grants = new Map<string, Grant>();
  readonly #fallback = new MemoryBucketStore();
  #failingSinceMs: number | undefined;
  #lastReapMs = -Infinity;
  #cancelSweep: Cancel | undefined;
  #closed = false;
  /** Exchanges made, for tests and the measurement of hot-row traffic. */
  exchanges = 0;

  constructor(options: LeasedBucketStoreOptions) {
    if (!(options.failOpenShare > 0 && options.failOpenShare <= 1))
      throw new RangeError("failOpenShare must be in (0, 1]");
    this.#o = options;
    this.#t = { ...defaultLeaseTuning, ...options.tuning };
  }

  /** True while exchanges fail (serving grants, then the fail-open share). */
  get failingOpen(): boolean {
    return this.#failingSinceMs !== undefined;
  }

  takeAll(requests: readonly TakeRequest[], nowMs: number): TakeAllResult {
    const grants = requests.map((r) => (isUnlimited(r.limits) ? undefined : this.#grant(r.key, r.limits, nowMs)));
    const local: boolean[] = [];
    const fallback: { i: number; r: TakeRequest }[] = [];
    let index = -1;
    let retryAfterMs = 0;
    requests.forEach((r, i) => {
      const g = grants[i];
      local[i] = true;
      if (!g) return;
      g.lastUseMs = nowMs;
      if (take(this.#asBucket(g, nowMs), r.units, nowMs).allowed) return;
      local[i] = false;
      if (this.failingOpen || g.exchangeFailed) {
        fallback.push({ i, r: { ...r, limits: this.#shareOf(r.limits) } });
        return;
      }
      const wait = this.#retryHint(g, admissionNeed(r.limits, r.units), nowMs);
      if (index < 0 || wait > retryAfterMs) {
        index = i;
        retryAfterMs = wait;
      }
    });
    if (index < 0 && fallback.length > 0) {
      const res = this.#fallback.takeAll(
        fallback.map((f) => f.r),
        nowMs,
      );
      if (!res.allowed) {
        index = fallback[res.index]!.i;
        retryAfterMs = res.retryAfterMs;
      }
    }
    if (index >= 0) {
      // What was wanted counts as usage: the next grant is sized to the demand, not to what was admitted.
      requests.forEach((r, i) => {
        this.#use(grants[i], r.units, nowMs);
      });
      return { allowed: false, buckets: requests.map((r) => this.peek(r.key, r.limits, nowMs)), index, retryAfterMs };
    }
    requests.forEach((r, i) => {
      const g = grants[i];
      if (!g) return;
      if (local[i]) g.level = take(this.#asBucket(g, nowMs), r.units, nowMs).next.level;
      this.#use(g, r.units, nowMs);
      this.#refreshIfLow(r.key, g, nowMs);
    });
    return { allowed: true, buckets: requests.map((r) => this.peek(r.key, r.limits, nowMs)) };
  }

  /**
   * One round trip for every bucket of `requests` whose grant cannot cover its units (joining an exchange
   * already in flight), so the caller can retry `takeAll` once. Skips a bucket drawn less than
   * `minDrawIntervalMs` ago unless that exchange granted all it asked for and the shared bucket was seen
   * holding a whole grant: that bounds the exchanges per key per process at any request rate once the limit is reached
   * (an empty bucket is asked at most once per interval).
   */
  async replenish(requests: readonly TakeRequest[], nowMs: number): Promise<void> {
    // Requests refused together (a concurrent burst) are summed before the first of them asks, so one exchange
    // is sized for all of them, up to the whole burst, instead of each waiter finding a grant sized for one.
    const limited = requests.filter((r) => !isUnlimited(r.limits));
    for (const r of limited) this.#grant(r.key, r.limits, nowMs).waiting += admissionNeed(r.limits, r.units);
    await null;
    await Promise.all(
      limited.map(async (r) => {
        const g = this.#grant(r.key, r.limits, nowMs);
        const need = admissionNeed(r.limits, r.units);
        try {
          await this.#replenishOne(r.key, g, need);
        } finally {
          g.waiting -= need;
        }
      }),
    );
  }

  /** One bucket's part of {@link replenish}: join, or start, the exchange that covers every waiter. */
  async #replenishOne(key: string, g: Grant, need: number): Promise<void> {
    if (this.#closed) return;
    if (g.drawing) await g.drawing;
    const now = this.#o.clock.nowMs();
    const held = this.#spendable(g, now);
    // Enough for this request and for every other request waiting on this bucket: retry now.
    if (held + 1e-6 >= Math.max(need, g.waiting)) return;
    // Another waiter already started the follow-up exchange (sized for every waiter): join it.
    if (g.drawing) return g.drawing;
    // A spike, not an empty bucket: the last exchange got all it asked and the bucket holds a whole grant and
    // what the waiters lack (both capped like a grant, so that a burst of waiters on a cold key may ask again).
    // Once the limit is reached the bucket never holds a whole grant within the interval: one exchange a second.
    const cap = g.limits.burst * this.#t.maxGrantOfBurst;
    const sized = grantSize(g.limits.burst, held, need, usageRate(g.usage, now, this.#t.usageWindowMs), this.#t);
    const enough = Math.max(1e-6, Math.min(Math.max(need, g.waiting) - held, cap), Math.min(sized.wantUnits, cap));
    const sharedHolds = g.lastGrantFull && g.shared !== undefined && refill(g.shared, now).level >= enough;
    if ((now - g.lastDrawMs < this.#t.minDrawIntervalMs || held + 1e-6 >= need) && !sharedHolds) {
      return;
    }
    await this.#exchange(key, g, need, false);
  }

  adjust(key: string, limits: BucketLimits, deltaUnits: number, nowMs: number): void {
    if (isUnlimited(limits) || deltaUnits === 0 || !Number.isFinite(deltaUnits)) return;
    const g = this.#grant(key, limits, nowMs);
    if (deltaUnits > 0) g.level -= deltaUnits;
    else g.returned -= deltaUnits;
  }

  /** The shared bucket as last seen, refilled, plus this process's grant (a never-seen bucket reads as full). */
  peek(key: string, limits: BucketLimits, nowMs: number): Bucket {
    const g = this.#grants.get(key);
    if (!g?.shared || isUnlimited(limits)) return fullBucket(limits, nowMs);
    const shared = refill({ ...g.shared, ratePerSec: limits.ratePerSec, burst: limits.burst }, nowMs);
    const level = Math.min(limits.burst, shared.level + Math.max(0, this.#spendable(g, nowMs)));
    return { ...shared, level };
  }

  /** Grants are returned by the sweep (idle keys), not evicted: nothing to drop here. */
  evictIdle(): number {
    return 0;
  }

  get size(): number {
    return this.#grants.size + this.#fallback.size;
  }

  /** Starts the sweep: idle grants go back every `sweepIntervalMs`, stale leases are reaped every `grantTtlMs`. */
  start(): void {
    const loop = () => {
      void this.sweep(this.#o.clock.nowMs()).finally(() => {
        if (!this.#closed) this.#cancelSweep = this.#o.clock.setTimeout(loop, this.#t.sweepIntervalMs);
      });
    };
    this.#cancelSweep = this.#o.clock.setTimeout(loop, this.#t.sweepIntervalMs);
  }

  /** Returns the grants of keys idle for `idleReturnMs`, and reaps stale leases of dead processes. */
  async sweep(nowMs: number): Promise<void> {
    const returns: Promise<void>[] = [];
    for (const [key, g] of this.#grants) {
      if (g.drawing || nowMs - g.lastUseMs < this.#t.idleReturnMs) continue;
      if (g.level === 0 && g.returned === 0) this.#grants.delete(key);
      else returns.push(this.#release(key, g));
    }
    this.#fallback.evictIdle(nowMs, this.#t.idleReturnMs);
    if (nowMs - this.#lastReapMs >= this.#t.grantTtlMs) {
      this.#lastReapMs = nowMs;
      returns.push(
        this.#o.source.reapStale(nowMs, 2 * this.#t.grantTtlMs).then(
          () => undefined,
          (e: unknown) => this.#failed(e, "reap"),
        ),
      );
    }
    await Promise.all(returns);
  }

  /** Orderly shutdown: stops the sweep and hands every grant (and every debt) back. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#cancelSweep?.();
    await Promise.all([...this.#grants.values()].map((g) => g.drawing));
    await Promise.all([...this.#grants].map(([key, g]) => this.#release(key, g)));
  }

  #grant(key: string, limits: BucketLimits, nowMs: number): Grant {
    let g = this.#grants.get(key);
    if (!g) {
      g = {
        limits,
        level: 0,
        renewedMs: nowMs,
        usage: newUsage(nowMs),
        lastUseMs: nowMs,
        lastDrawMs: -Infinity,
        returned: 0,
        shared: undefined,
        waiting: 0,
        lastGrantFull: true,
        exchangeFailed: false,
        drawing: undefined,
      };
      this.#grants.set(key, g);
    }
    // New limits (an override, a tier change) reach the shared row at the next exchange.
    g.limits = limits;
    return g;
  }

  /** Local tokens that may be spent now: a grant not renewed within `grantTtlMs` keeps only its debt. */
  #spendable(g: Grant, nowMs: number): number {
    if (g.level > 0 && nowMs - g.renewedMs >= this.#t.grantTtlMs) g.level = 0;
    return g.level;
  }

  /** The grant as a bucket that never refills (refill happens in the shared bucket), for token-bucket.ts `take`. */
  #asBucket(g: Grant, nowMs: number): Bucket {
    return {
      ratePerSec: g.limits.ratePerSec,
      burst: g.limits.burst,
      level: this.#spendable(g, nowMs),
      updatedMs: nowMs,
    };
  }

  #use(g: Grant | undefined, units: number, nowMs: number): void {
    if (g) g.usage = addUsage(g.usage, units, nowMs, this.#t.usageWindowMs);
  }

  #shareOf(limits: BucketLimits): BucketLimits {
    return { ratePerSec: limits.ratePerSec * this.#o.failOpenShare, burst: limits.burst * this.#o.failOpenShare };
  }

  #retryHint(g: Grant, need: number, nowMs: number): number {
    if (!g.shared) return 0;
    return msUntilLevel(refill(g.shared, nowMs), need - Math.max(0, this.#spendable(g, nowMs)));
  }

  #refreshIfLow(key: string, g: Grant, nowMs: number): void {
    if (g.drawing || this.#closed || nowMs - g.lastDrawMs < this.#t.minDrawIntervalMs) return;
    const held = this.#spendable(g, nowMs);
    const rate = usageRate(g.usage, nowMs, this.#t.usageWindowMs);
    // Renew a grant past half its life too, so a steadily used key never sees it expire.
    const aging = held > 0 && nowMs - g.renewedMs >= this.#t.grantTtlMs / 2;
    if (runningLow(held, rate, this.#t) || aging || g.returned > 0 || held < 0) void this.#exchange(key, g, 0, false);
  }

  /** One exchange with the shared bucket; `need` is what the request at hand needs (0: background). */
  #exchange(key: string, g: Grant, need: number, release: boolean): Promise<void> {
    const now = this.#o.clock.nowMs();
    g.lastDrawMs = now;
    const remaining = this.#spendable(g, now);
    const returned = g.returned;
    g.returned = 0;
    const rate = usageRate(g.usage, now, this.#t.usageWindowMs);
    const sized = grantSize(g.limits.burst, remaining, need, rate, this.#t);
    const waiting = Math.min(g.limits.burst, g.waiting) - Math.max(0, remaining);
    const size = release
      ? { minUnits: 0, wantUnits: 0 }
      : { minUnits: sized.minUnits, wantUnits: Math.max(sized.wantUnits, waiting) };
    // A release hands the whole balance over now, so nothing spends it while the answer is on its way.
    if (release) g.level -= remaining;
    this.exchanges++;
    const limits = g.limits;
    // A deadline past which the exchange counts as failed (the statement may still complete: unknown).
    const drawn = timeout(
      this.#o.clock,
      this.#o.source.draw({
        key,
        holderId: this.#o.holderId,
        limits,
        nowMs: now,
        remaining,
        returned,
        release,
        ...size,
      }),
      this.#t.drawTimeoutMs,
    ).then((res) => {
      if (res === "timeout") throw new Error(`rate-limit exchange exceeded ${this.#t.drawTimeoutMs} ms`);
      return res;
    });
    g.drawing = drawn
      .then(
        (res) => {
          g.lastGrantFull = res.granted >= size.wantUnits;
          g.exchangeFailed = false;
          this.#settle(g, res, remaining, release, now);
        },
        (e: unknown) => {
          // Unknown whether it committed: the give-back is dropped rather than risk returning it twice, and a
          // release's balance stays with the lease until it is reaped (under-admission either way, never over).
          g.lastGrantFull = false;
          g.exchangeFailed = true;
          count("ratelimit.lease.exchanges", { outcome: "failed" });
          this.#failed(e, key);
        },
      )
      .finally(() => {
        g.drawing = undefined;
      });
    return g.drawing;
  }

  #settle(g: Grant, res: DrawResult, remaining: number, release: boolean, sentMs: number): void {
    if (this.#failingSinceMs !== undefined) {
      this.#o.warn?.("rate-limit buckets reachable again; leases resume", {
        failed_for_ms: this.#o.clock.nowMs() - this.#failingSinceMs,
      });
      this.#failingSinceMs = undefined;
    }
    g.shared = { ratePerSec: g.limits.ratePerSec, burst: g.limits.burst, level: res.level, updatedMs: res.updatedMs };
    count("ratelimit.lease.exchanges", { outcome: release ? "release" : res.granted > 0 ? "granted" : "empty" });
    if (release) return;
    // Debt moved into the shared bucket; tokens the lease no longer counts (reaped as stale) are forfeited.
    g.level += -Math.min(0, remaining) - (Math.max(0, remaining) - res.kept) + res.granted;
    g.renewedMs = sentMs;
  }

  #release(key: string, g: Grant): Promise<void> {
    const done = this.#exchange(key, g, 0, true);
    return done.then(() => {
      // A request that came in meanwhile keeps the (now empty) entry; otherwise the key is forgotten.
      if (g.lastUseMs <= g.lastDrawMs && this.#grants.get(key) === g && g.level === 0 && g.returned === 0)
        this.#grants.delete(key);
    });
  }

  #failed(error: unknown, key: string): void {
    if (this.#failingSinceMs !== undefined) return;
    this.#failingSinceMs = this.#o.clock.nowMs();
    this.#o.warn?.("rate-limit buckets unreachable: serving local grants, then failing open at the process share", {
      error: String(error),
      key,
      fail_open_share: this.#o.failOpenShare,
      grant_ttl_ms: this.#t.grantTtlMs,
    });
  }
}
