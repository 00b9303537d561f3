/**
 * Rate-limit buckets shared through PostgreSQL (`RATE_LIMIT_STORE=postgres`): two limiters, each with its own
 * pool and lease identity (two "processes"), on one real database, driven in real time. Whatever the balance,
 * the two together admit at most `burst + rate × window` in every window; all of the load on one of them still
 * gets ≥ 90 % of the limit (the memory store's 1/N share would give 50 %); each process makes about one
 * exchange per second per key at any request rate; with the database unreachable each serves its grant, then
 * fails open at its 1/N share, and resumes when the database is back.
 */
import assert from "node:assert/strict";
import type { Kysely } from "kysely";
import { createKysely, openDatabase, type OpenedDatabase } from "../../../src/ledger/database.js";
import { createPgLimitLeaseSource } from "../../../src/ledger/limit-bucket-sql.js";
import type { Database } from "../../../src/ledger/schema.js";
import { LeasedBucketStore } from "../../../src/ratelimit/leased-bucket-store.js";
import { defaultLeaseTuning, type LeaseTuning } from "../../../src/ratelimit/lease-sizing.js";
import { createRateLimiter, type KeyedRateLimiter } from "../../../src/ratelimit/limiter.js";
import type { AdmitInput } from "../../../src/ratelimit/types.js";
import { systemClock } from "../../../src/util/clock.js";
import { driveLoad, maxInWindow, type LoadResult } from "../../support/limit-load.js";
import { createTestDatabase, type TestDatabase } from "../../support/postgres.js";
import { setDatabaseReachable } from "../../support/database-reachability.js";

const RATE = 50; // requests per second
const BURST = 100;
const RUN_MS = 8_000;
/** The steady state is measured after this (the first grants ramp up with the usage estimate). */
const WARM_MS = 2_000;
const KEY = "a:acct:requests";
const tiers = {
  consumer: {
    requestsPerSec: RATE,
    requestsBurst: BURST,
    inputTokensPerMin: 0,
    inputTokensBurst: 0,
    outputTokensPerMin: 0,
    outputTokensBurst: 0,
  },
};
const now = () => Date.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Node {
  db: Kysely<Database>;
  store: LeasedBucketStore;
  limiter: KeyedRateLimiter;
  warnings: string[];
}

describe("rate-limit buckets leased from PostgreSQL by two processes", function () {
  this.timeout(60_000);
  let testDb: TestDatabase;
  let opened: OpenedDatabase;
  let nodes: Node[] = [];

  before(async () => {
    testDb = await createTestDatabase();
    opened = await openDatabase({ databaseUrl: testDb.url }); // runs the migrations
  });
  after(async () => {
    await opened?.close();
    await testDb?.close();
  });

  /**
   * The load tests measure leasing, not the outage policy: on this shared 2-core machine an exchange can take
   * longer than the 500 ms default under load, which would fail open at 1/2 and measure that instead.
   */
  const patient = { drawTimeoutMs: 5_000 };

  function node(holderId: string, tuning: Partial<LeaseTuning> = {}): Node {
    const db = createKysely(testDb.url, { poolSize: 4 });
    const warnings: string[] = [];
    const store = new LeasedBucketStore({
      source: createPgLimitLeaseSource(db),
      holderId,
      clock: systemClock,
      failOpenShare: 1 / 2,
      tuning,
      warn: (m) => warnings.push(m),
    });
    store.start();
    const n = { db, store, limiter: createRateLimiter({ processShare: 1, store, tiers }), warnings };
    nodes.push(n);
    return n;
  }

  afterEach(async () => {
    await setDatabaseReachable(testDb.url, true);
    for (const n of nodes) {
      await n.store.close();
      await n.db.destroy();
    }
    nodes = [];
    await opened.db.deleteFrom("limit_leases").execute();
    await opened.db.deleteFrom("limit_buckets").execute();
  });

  const input = (accountId: string): AdmitInput => ({
    accountId,
    keyId: `${accountId}-key`,
    tier: "consumer",
    model: "m",
    inputTokens: 0,
    maxOutputTokens: 0,
  });

  async function run(pick: (i: number) => number, offeredPerSec: number, accountId = "acct"): Promise<LoadResult> {
    const pair = [node(`${accountId}-h1`, patient), node(`${accountId}-h2`, patient)];
    return driveLoad({
      nodes: pair.map((n) => n.limiter),
      pick,
      offeredPerSec,
      durationMs: RUN_MS,
      stepMs: 10,
      input: input(accountId),
      now,
      wait: sleep,
    });
  }

  function assertWithinBucket(r: LoadResult): void {
    for (const n of nodes) assert.deepEqual(n.warnings, [], "the database answered throughout");
    for (const w of [100, 1_000, 2_000, RUN_MS]) {
      const most = maxInWindow(r.admitted, w);
      assert.ok(most <= BURST + (RATE * w) / 1000, `${most} admitted in ${w} ms`);
    }
  }

  /** What one exact bucket admits over the run under demand above the limit. */
  const exact = BURST + (RATE * RUN_MS) / 1000;

  /**
   * Admission against one exact bucket: over the whole run, and the sustained rate after WARM_MS. The whole run
   * misses about one exchange interval of refill (tokens wait in the shared row for up to minDrawIntervalMs);
   * the rate misses nothing.
   */
  function ratios(r: LoadResult, start: number): { whole: number; steady: number; text: string } {
    const whole = r.admitted.length / exact;
    const late = r.admitted.filter((t) => t >= start + WARM_MS && t < start + RUN_MS).length;
    const steady = late / ((RATE * (RUN_MS - WARM_MS)) / 1000);
    const text = `whole run ${r.admitted.length}/${exact} (${(whole * 100).toFixed(1)} %), after ${WARM_MS} ms ${late}/${(RATE * (RUN_MS - WARM_MS)) / 1000} (${(steady * 100).toFixed(1)} %)`;
    return { whole, steady, text };
  }

  it("balanced load: never over the bucket in any window, and about the whole limit", async () => {
    const start = now();
    const r = await run((i) => i % 2, 3 * RATE);
    assertWithinBucket(r);
    const q = ratios(r, start);
    console.log(`      balanced: ${q.text}, per node ${r.perNode.join("/")}`);
    assert.ok(q.steady >= 0.9 && q.whole >= 0.85, q.text);
  });

  it("all of the load on one process: ≥ 90 % of the limit, never over it, ~1 exchange/s per key", async () => {
    const start = now();
    const r = await run(() => 0, 10 * RATE);
    assertWithinBucket(r);
    const q = ratios(r, start);
    const exchanges = nodes[0]!.store.exchanges;
    console.log(
      `      all on one: ${q.text}, offered ${r.offered}, ` +
        `${exchanges} exchanges (${(exchanges / (RUN_MS / 1000)).toFixed(2)}/s for the key)`,
    );
    assert.equal(r.perNode[1], 0);
    assert.ok(q.steady >= 0.9 && q.whole >= 0.85, q.text);
    // One per second plus the first few while the grant grows with the usage estimate.
    assert.ok(exchanges <= RUN_MS / 1000 + 4, `${exchanges} exchanges`);
  });

  it("takes a new limit (an operator override) into the shared row at the next exchange", async () => {
    const a = node("h1");
    assert.equal((await a.limiter.admitWaiting(input("acct"), now)).ok, true);
    a.limiter.setAccountLimits("acct", { requestsPerSec: 7, requestsBurst: 9 });
    await sleep(defaultLeaseTuning.minDrawIntervalMs);
    await a.store.replenish([{ key: KEY, limits: { ratePerSec: 7, burst: 9 }, units: 50 }], now());
    const row = await opened.db
      .selectFrom("limit_buckets")
      .selectAll()
      .where("key", "=", KEY)
      .executeTakeFirstOrThrow();
    assert.deepEqual([row.rate_per_sec, row.burst], [7, 9]);
    assert.ok(row.level <= 9);
  });

  it("database unreachable: serves its grant, then fails open at the 1/N share with one warning, then resumes", async () => {
    const a = node("h1");
    // Warm up: a grant sized to this usage.
    await driveLoad({
      nodes: [a.limiter],
      pick: () => 0,
      offeredPerSec: RATE,
      durationMs: 1_000,
      stepMs: 10,
      input: input("acct"),
      now,
      wait: sleep,
    });
    await setDatabaseReachable(testDb.url, false);
    const downMs = 4_000;
    const r = await driveLoad({
      nodes: [a.limiter],
      pick: () => 0,
      offeredPerSec: 3 * RATE,
      durationMs: downMs,
      stepMs: 10,
      input: input("acct"),
      now,
      wait: sleep,
    });
    assert.equal(a.store.failingOpen, true);
    assert.deepEqual(a.warnings, [
      "rate-limit buckets unreachable: serving local grants, then failing open at the process share",
    ]);
    const share = 0.5 * (BURST + (RATE * downMs) / 1000);
    const held = BURST * defaultLeaseTuning.maxGrantOfBurst;
    console.log(`      database down ${downMs} ms: admitted ${r.admitted.length} (share ${share}, grant ≤ ${held})`);
    assert.ok(r.admitted.length <= share + held, `admitted ${r.admitted.length}`);
    // Loose below: on a loaded machine the outage is noticed a little late (refusals until the first exchange fails).
    assert.ok(r.admitted.length >= 0.7 * share, `admitted ${r.admitted.length}`);

    await setDatabaseReachable(testDb.url, true);
    await sleep(defaultLeaseTuning.minDrawIntervalMs);
    for (let i = 0; i < 20 && a.store.failingOpen; i++) {
      await a.limiter.admitWaiting(input("acct"), now);
      await sleep(100);
    }
    assert.equal(a.store.failingOpen, false);
    assert.equal(a.warnings.length, 2);
  });

  it("hands grants back at close(): nothing stays out on lease", async () => {
    await run((i) => i % 2, RATE / 2, "quiet");
    for (const n of nodes) await n.store.close();
    const leases = await opened.db.selectFrom("limit_leases").selectAll().execute();
    assert.deepEqual(leases, []);
    const row = await opened.db
      .selectFrom("limit_buckets")
      .select("outstanding")
      .where("key", "=", "a:quiet:requests")
      .executeTakeFirstOrThrow();
    assert.equal(row.outstanding, 0);
  });
});
