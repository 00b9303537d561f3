/**
 * Admissions racing through async handlers (await points between parse, admit and dispatch) admit exactly
 * what the buckets allow: no over-admission from interleaving, and no lost charges.
 */
import assert from "node:assert/strict";
import { createRateLimiter, type KeyedRateLimiter } from "../../../src/ratelimit/limiter.js";
import type { AdmitInput } from "../../../src/ratelimit/types.js";
import { FakeClock } from "../../../src/util/clock.js";

const input = (over: Partial<AdmitInput> = {}): AdmitInput => ({
  accountId: "acct",
  keyId: "key",
  tier: "consumer",
  model: "m",
  inputTokens: 50,
  maxOutputTokens: 100, // small, so the request bucket binds unless a test says otherwise
  ...over,
});

/** Yields to the event loop `n` times, mixing microtasks and macrotasks so handlers interleave. */
async function yieldTimes(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) await Promise.resolve();
    else await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** A handler shape: parse (await), admit, dispatch (await), reconcile. Returns whether it was admitted. */
async function handler(
  l: KeyedRateLimiter,
  clock: FakeClock,
  i: number,
  over: Partial<AdmitInput> = {},
): Promise<boolean> {
  await yieldTimes(i % 5);
  const r = l.admit(input(over), clock.nowMs());
  if (!r.ok) return false;
  await yieldTimes((i * 7) % 3);
  // Used exactly what was charged: reconciliation must not change what the bucket allows.
  l.reconcile(
    r.ticket,
    { inputTokens: r.ticket.chargedInputTokens, outputTokens: r.ticket.chargedOutputTokens },
    clock.nowMs(),
  );
  return true;
}

describe("concurrent admissions", () => {
  it("admit exactly the request burst under interleaving", async () => {
    const clock = new FakeClock();
    const l = createRateLimiter();
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => handler(l, clock, i)));
    assert.equal(results.filter(Boolean).length, 120); // consumer request burst
  });

  it("admit exactly what the output-token bucket holds when that is the binding limit", async () => {
    const clock = new FakeClock();
    const l = createRateLimiter({ chargeExpectedOutput: false });
    // 64,000 / 1000 per request = 64, fewer than the 120 request burst.
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => handler(l, clock, i, { maxOutputTokens: 1000 })),
    );
    assert.equal(results.filter(Boolean).length, 64);
  });

  it("admit exactly the tighter of a key and its account when several keys race", async () => {
    const clock = new FakeClock();
    const l = createRateLimiter({ tiers: { consumer: { requestsBurst: 50 } } });
    l.setKeyLimits("k1", { requestsBurst: 10 });
    const jobs = Array.from({ length: 200 }, (_, i) => handler(l, clock, i, { keyId: i % 2 === 0 ? "k1" : "k2" }));
    const results = await Promise.all(jobs);
    const byKey = (parity: number) => results.filter((ok, i) => ok && i % 2 === parity).length;
    assert.equal(byKey(0), 10);
    assert.equal(byKey(0) + byKey(1), 50);
  });

  it("admit the refill and no more as time advances between waves", async () => {
    const clock = new FakeClock();
    const l = createRateLimiter({ tiers: { consumer: { requestsPerSec: 20, requestsBurst: 120 } } });
    let admitted = 0;
    for (let wave = 0; wave < 10; wave++) {
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => handler(l, clock, i)));
      admitted += results.filter(Boolean).length;
      clock.advance(1000);
    }
    assert.equal(admitted, 120 + 9 * 20);
  });
});
