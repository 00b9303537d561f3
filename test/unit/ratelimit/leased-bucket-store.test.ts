/**
 * The leased store with a fake shared bucket (the arithmetic of migration 0005 on a Map) and a fake clock: two
 * stores are two processes. The same properties are checked on real PostgreSQL in
 * test/integration/ratelimit/leased-buckets.test.ts.
 */
import assert from "node:assert/strict";
import { defaultLeaseTuning } from "../../../src/ratelimit/lease-sizing.js";
import { LeasedBucketStore } from "../../../src/ratelimit/leased-bucket-store.js";
import { createRateLimiter, type KeyedRateLimiter } from "../../../src/ratelimit/limiter.js";
import type { AdmitInput } from "../../../src/ratelimit/types.js";
import { FakeClock, systemClock } from "../../../src/util/clock.js";
import { FakeLeaseSource } from "../../support/fake-lease-source.js";
import { driveLoad, maxInWindow } from "../../support/limit-load.js";
import { busyFor, startPipeReply } from "../../support/pipe-reply.js";

const RATE = 20; // requests per second
const BURST = 40;
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
const input: AdmitInput = {
  accountId: "acct",
  keyId: "key",
  tier: "consumer",
  model: "m",
  inputTokens: 0,
  maxOutputTokens: 0,
};
const flush = () => new Promise<void>((r) => setImmediate(r));

interface World {
  clock: FakeClock;
  source: FakeLeaseSource;
  warnings: string[];
  node(holderId: string): { store: LeasedBucketStore; limiter: KeyedRateLimiter };
  wait(ms: number): Promise<void>;
}

function world(): World {
  const clock = new FakeClock();
  const source = new FakeLeaseSource();
  const warnings: string[] = [];
  return {
    clock,
    source,
    warnings,
    node(holderId) {
      const store = new LeasedBucketStore({
        source,
        holderId,
        clock,
        failOpenShare: 0.5,
        warn: (m) => warnings.push(m),
      });
      store.start();
      return { store, limiter: createRateLimiter({ processShare: 1, store, tiers }) };
    },
    async wait(ms) {
      // Step by step so the sweep's timers and the exchanges they start interleave as they would in real time.
      for (let left = ms; left > 0; left -= 10) {
        clock.advance(Math.min(10, left));
        await flush();
      }
    },
  };
}

/** What one in-memory limiter (the exact bucket) admits under the same load. */
async function ideal(offeredPerSec: number, durationMs: number): Promise<number> {
  const clock = new FakeClock();
  const limiter = createRateLimiter({ tiers });
  const r = await driveLoad({
    nodes: [limiter],
    pick: () => 0,
    offeredPerSec,
    durationMs,
    stepMs: 10,
    input,
    now: () => clock.nowMs(),
    wait: async (ms) => clock.advance(ms),
  });
  return r.admitted.length;
}

function assertWithinBucket(times: readonly number[]): void {
  for (const w of [10, 100, 1_000, 5_000, 20_000]) {
    const most = maxInWindow(times, w);
    assert.ok(most <= BURST + (RATE * w) / 1000 + 1e-6, `${most} admitted in ${w} ms`);
  }
}

describe("LeasedBucketStore (two processes on one fake shared bucket)", () => {
  for (const [name, pick] of [
    ["balanced", (i: number) => i % 2],
    ["all on one process", () => 0],
  ] as const) {
    it(`${name}: never admits more than burst + rate × window, and ≥ 90 % of one exact bucket`, async () => {
      const w = world();
      const start = w.clock.nowMs();
      const nodes = [w.node("h1"), w.node("h2")];
      const load = {
        pick,
        offeredPerSec: 3 * RATE,
        durationMs: 20_000,
        stepMs: 10,
        input,
        now: () => w.clock.nowMs(),
        wait: (ms: number) => w.wait(ms),
      };
      const r = await driveLoad({ ...load, nodes: nodes.map((n) => n.limiter) });
      assertWithinBucket(r.admitted);
      const exact = await ideal(3 * RATE, 20_000);
      assert.ok(r.admitted.length >= 0.9 * exact, `admitted ${r.admitted.length} of the exact ${exact}`);
      // Hot-row traffic: about one exchange per second per process after the warm-up, whatever the request rate.
      const steady = w.source.drawTimes.filter((t) => t >= start + 2_000).length;
      assert.ok(steady <= 2 * 18 * 1.1, `${steady} exchanges in 18 s by two processes`);
    });
  }

  it("does not let a grant held through a refill be spent on top of a full bucket elsewhere", async () => {
    const w = world();
    const a = w.node("h1");
    const b = w.node("h2");
    const now = () => w.clock.nowMs();
    // A runs at half the rate for 3 s: it keeps a grant of 1-3 s of its usage.
    const steady = await driveLoad({
      nodes: [a.limiter],
      pick: () => 0,
      offeredPerSec: RATE / 2,
      durationMs: 3_000,
      stepMs: 10,
      input,
      now,
      wait: (ms) => w.wait(ms),
    });
    const times = [...steady.admitted];
    // Idle for less than idleReturnMs while the shared bucket refills; then both spend everything at once.
    await w.wait(2_800);
    const held = w.source.rows.get(KEY)!.leases.get("h1")?.held ?? 0;
    assert.ok(held >= RATE / 2, `A holds ${held} it has not spent`);
    const burstOn = async (n: { limiter: KeyedRateLimiter }, count: number) => {
      const rs = await Promise.all(Array.from({ length: count }, () => n.limiter.admitWaiting(input, now)));
      for (const r of rs) if (r.ok) times.push(now());
    };
    await Promise.all([burstOn(a, 100), burstOn(b, 100)]);
    await w.wait(10);
    await Promise.all([burstOn(a, 100), burstOn(b, 100)]);
    assertWithinBucket(times.sort((x, y) => x - y));
    // Still most of the burst within those 10 ms (the rest waits out one exchange interval: under-admission).
    assert.ok(maxInWindow(times, 10) >= 0.8 * BURST, `${maxInWindow(times, 10)} within 10 ms`);
  });

  it("bounds exchanges per key to about one per second per process at 50x the limit", async () => {
    const w = world();
    const start = w.clock.nowMs();
    const n = w.node("h1");
    await driveLoad({
      nodes: [n.limiter],
      pick: () => 0,
      offeredPerSec: 50 * RATE,
      durationMs: 10_000,
      stepMs: 10,
      input,
      now: () => w.clock.nowMs(),
      wait: (ms) => w.wait(ms),
    });
    // A few in the first tens of ms while the grant grows with the usage estimate, then one per second.
    const steady = w.source.drawTimes.filter((t) => t >= start + 2_000).length;
    assert.ok(steady <= 9 && steady >= 7, `${steady} exchanges from 2 s to 10 s`);
    assert.ok(w.source.drawTimes.length <= 16, `${w.source.drawTimes.length} exchanges in 10 s`);
  });

  it("admits a cold key's first request after one round trip (admit alone has no grant yet)", async () => {
    const w = world();
    const { limiter } = w.node("h1");
    assert.equal(limiter.admit(input, w.clock.nowMs()).ok, false);
    const r = await limiter.admitWaiting(input, () => w.clock.nowMs());
    assert.equal(r.ok, true);
    assert.equal(w.source.draws.get(KEY), 1);
  });

  it("admits exactly the burst of a concurrent burst on a cold key, in one round trip", async () => {
    const w = world();
    const { limiter } = w.node("h1");
    const rs = await Promise.all(Array.from({ length: 100 }, () => limiter.admitWaiting(input, () => w.clock.nowMs())));
    assert.equal(rs.filter((r) => r.ok).length, BURST);
    assert.equal(w.source.draws.get(KEY), 1);
    const refused = rs.find((r) => !r.ok);
    assert.ok(refused && !refused.ok && refused.retryAfterMs > 0, "a refusal says when to retry");
  });

  it("returns an idle key's grant after idleReturnMs, so another process can have it", async () => {
    const w = world();
    const a = w.node("h1");
    for (let i = 0; i < 20; i++) await a.limiter.admitWaiting(input, () => w.clock.nowMs());
    await w.wait(200);
    const row = w.source.rows.get(KEY)!;
    assert.ok(row.outstanding > 0, "the busy process holds a grant");
    await w.wait(defaultLeaseTuning.idleReturnMs + defaultLeaseTuning.sweepIntervalMs + 50);
    assert.equal(row.outstanding, 0);
    assert.equal(row.leases.size, 0);
    assert.equal(a.store.size, 0);
  });

  it("moves reconciliation debt into the shared bucket at the next exchange, where refill repays it", async () => {
    const w = world();
    const a = w.node("h1");
    assert.equal((await a.limiter.admitWaiting(input, () => w.clock.nowMs())).ok, true);
    const before = w.source.rows.get(KEY)!.level;
    a.store.adjust(KEY, { ratePerSec: RATE, burst: BURST }, 30, w.clock.nowMs());
    await a.store.replenish([{ key: KEY, limits: { ratePerSec: RATE, burst: BURST }, units: 1 }], w.clock.nowMs());
    const row = w.source.rows.get(KEY)!;
    // The 30 units of debt left the process (minus what it still held) and lowered the shared level.
    assert.ok(row.level < before - 20, `level ${row.level}, was ${before}`);
  });

  it("PostgreSQL down: serves its grant, then fails open at the process share with one warning, and recovers", async () => {
    const w = world();
    const a = w.node("h1");
    for (let i = 0; i < 5; i++) await a.limiter.admitWaiting(input, () => w.clock.nowMs());
    w.source.failing = true;
    const start = w.clock.nowMs();
    const r = await driveLoad({
      nodes: [a.limiter],
      pick: () => 0,
      offeredPerSec: 3 * RATE,
      durationMs: 20_000,
      stepMs: 10,
      input,
      now: () => w.clock.nowMs(),
      wait: (ms) => w.wait(ms),
    });
    assert.equal(a.store.failingOpen, true);
    assert.deepEqual(w.warnings, [
      "rate-limit buckets unreachable: serving local grants, then failing open at the process share",
    ]);
    // What it held, plus half of the bucket (failOpenShare 0.5) in memory: never the whole limit on its own.
    const held = BURST * defaultLeaseTuning.maxGrantOfBurst;
    const share = 0.5 * (BURST + RATE * 20);
    assert.ok(r.admitted.length <= held + share + 1, `admitted ${r.admitted.length}`);
    assert.ok(r.admitted.length >= 0.9 * share, `admitted ${r.admitted.length}`);
    // After the grant's TTL only the fail-open share admits: 10 req/s.
    const late = r.admitted.filter((t) => t >= start + 15_000).length;
    assert.ok(late <= 0.5 * RATE * 5 + 1, `admitted ${late} in the last 5 s`);
    w.source.failing = false;
    await w.wait(defaultLeaseTuning.minDrawIntervalMs);
    await a.limiter.admitWaiting(input, () => w.clock.nowMs());
    await w.wait(10);
    assert.equal(a.store.failingOpen, false);
    assert.equal(w.warnings.length, 2);
  });

  it("reaps a dead process's lease after twice the grant TTL, so the bucket refills past it", async () => {
    const w = world();
    // A process that drew and then died: no sweep ever runs on it, and it never hands its grant back.
    const dead = new LeasedBucketStore({ source: w.source, holderId: "dead", clock: w.clock, failOpenShare: 1 });
    const limits = { ratePerSec: RATE, burst: BURST };
    await dead.replenish([{ key: KEY, limits, units: 15 }], w.clock.nowMs());
    const row = w.source.rows.get(KEY)!;
    assert.equal(row.leases.get("dead")?.held, 15);
    assert.equal(row.outstanding, 15);
    w.node("alive");
    await w.wait(2 * defaultLeaseTuning.grantTtlMs - 100);
    assert.equal(row.outstanding, 15, "not before it is stale");
    await w.wait(defaultLeaseTuning.grantTtlMs + 200);
    assert.equal(row.leases.has("dead"), false);
    assert.equal(row.outstanding, 0);
  });

  it("hands every grant back at close()", async () => {
    const w = world();
    const a = w.node("h1");
    for (let i = 0; i < 10; i++) await a.limiter.admitWaiting(input, () => w.clock.nowMs());
    await w.wait(100);
    assert.ok(w.source.rows.get(KEY)!.outstanding > 0);
    await a.store.close();
    assert.equal(w.source.rows.get(KEY)!.outstanding, 0);
    assert.equal(w.source.rows.get(KEY)!.leases.size, 0);
  });
});

describe("LeasedBucketStore exchange timeout", () => {
  it("counts an exchange slower than drawTimeoutMs as failed (fail open), not one at the bound", async () => {
    const clock = new FakeClock();
    const never: FakeLeaseSource = Object.assign(new FakeLeaseSource(), {
      draw: () => new Promise<never>(() => {}),
    });
    const store = new LeasedBucketStore({ source: never, holderId: "h", clock, failOpenShare: 0.5 });
    const limits = { ratePerSec: RATE, burst: BURST };
    void store.replenish([{ key: KEY, limits, units: 1 }], clock.nowMs());
    await flush();
    clock.advance(defaultLeaseTuning.drawTimeoutMs - 1);
    await flush();
    assert.equal(store.failingOpen, false);
    clock.advance(1);
    await flush();
    assert.equal(store.failingOpen, true);
    // Failing open: the fail-open share admits in memory.
    assert.equal(store.takeAll([{ key: KEY, limits, units: 1 }], clock.nowMs()).allowed, true);
  });
});

describe("LeasedBucketStore exchange timeout under a busy event loop", () => {
  it("a reply that arrived in time while the loop was busy past the deadline is not a failure", async () => {
    const pipe = await startPipeReply();
    try {
      const fake = new FakeLeaseSource();
      let asked = false;
      const source: FakeLeaseSource = Object.assign(new FakeLeaseSource(), {
        draw: (r: Parameters<FakeLeaseSource["draw"]>[0]) => {
          asked = true;
          return pipe.reply(fake.draw(r));
        },
      });
      const store = new LeasedBucketStore({ source, holderId: "h", clock: systemClock, failOpenShare: 0.5 });
      const limits = { ratePerSec: RATE, burst: BURST };
      const replenished = store.replenish([{ key: KEY, limits, units: 1 }], systemClock.nowMs());
      // Microtasks only, never a turn of the loop: the reply must not be read before the block.
      for (let i = 0; i < 100 && !asked; i++) await Promise.resolve();
      assert.ok(asked);
      // The loop is busy past the deadline; the reply lands in the pipe meanwhile.
      busyFor(defaultLeaseTuning.drawTimeoutMs + 200);
      await replenished;
      assert.equal(store.failingOpen, false, "a reply that was waiting in the pipe counted as a timeout");
      assert.equal(store.takeAll([{ key: KEY, limits, units: 1 }], systemClock.nowMs()).allowed, true);
      await store.close();
    } finally {
      pipe.close();
    }
  });
});

describe("LeasedBucketStore after one key's exchange failed", () => {
  it("a key whose exchange failed is not refused outright once another key's exchange clears the failure", async () => {
    const clock = new FakeClock();
    const source = new FakeLeaseSource();
    const real = source.draw.bind(source);
    // The first exchange of KEY never answers (a lost reply, or one that landed while the event loop was busy).
    let hang = true;
    source.draw = (r) => {
      if (r.key === KEY && hang) {
        hang = false;
        return new Promise<never>(() => {});
      }
      return real(r);
    };
    const store = new LeasedBucketStore({ source, holderId: "h", clock, failOpenShare: 0.5 });
    const limits = { ratePerSec: RATE, burst: BURST };
    const other = "a:acct:output_tokens";
    void store.replenish([{ key: KEY, limits, units: 1 }], clock.nowMs());
    await flush();
    clock.advance(defaultLeaseTuning.drawTimeoutMs);
    await flush();
    assert.equal(store.failingOpen, true);
    // Another bucket's exchange succeeds: the store as a whole is no longer failing.
    await store.replenish([{ key: other, limits, units: 1 }], clock.nowMs());
    assert.equal(store.failingOpen, false);
    // KEY still holds nothing, and its last exchange is less than minDrawIntervalMs old; the shared bucket is full.
    const take = () => store.takeAll([{ key: KEY, limits, units: 1 }], clock.nowMs());
    if (!take().allowed) await store.replenish([{ key: KEY, limits, units: 1 }], clock.nowMs());
    assert.equal(take().allowed, true, "refused while the shared bucket holds the whole burst");
  });
});
