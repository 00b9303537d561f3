/**
 * With a shared store (RATE_LIMIT_STORE=postgres) a request its grant cannot cover waits for a grant exchange;
 * requests arriving meanwhile may take that grant, so it waits again, at most MAX_REPLENISH_ROUNDS times, and
 * only then is refused. (The scale suite saw ~0.3 % of requests refused at half the account's rate with a single
 * round.)
 */
import assert from "node:assert/strict";
import { MAX_REPLENISH_ROUNDS } from "../../../src/ratelimit/admission.js";
import { MemoryBucketStore, type TakeRequest } from "../../../src/ratelimit/bucket-store.js";
import { createRateLimiter } from "../../../src/ratelimit/limiter.js";

/** A memory store whose exchanges refill nothing until the `refillAt`-th, which refills every bucket asked for. */
class SlowGrants extends MemoryBucketStore {
  exchanges = 0;
  constructor(readonly refillAt: number) {
    super();
  }
  async replenish(requests: readonly TakeRequest[], nowMs: number): Promise<void> {
    this.exchanges++;
    if (this.exchanges === this.refillAt)
      for (const r of requests) this.adjust(r.key, r.limits, -r.limits.burst, nowMs);
  }
}

const tiers = {
  consumer: { requestsPerSec: 0.001, requestsBurst: 1, inputTokensPerMin: 1e9, outputTokensPerMin: 1e9 },
};
const input = {
  accountId: "a1",
  keyId: "k1",
  tier: "consumer" as const,
  model: "m",
  inputTokens: 10,
  maxOutputTokens: 10,
};

describe("waiting for grant exchanges (shared rate-limit store)", () => {
  it(`admits a request whose grant came on exchange ${MAX_REPLENISH_ROUNDS}`, async () => {
    const store = new SlowGrants(MAX_REPLENISH_ROUNDS);
    const limiter = createRateLimiter({ tiers, store });
    assert.equal(limiter.admit(input, 0).ok, true, "the burst of 1");
    const r = await limiter.admitWaiting(input, () => 0);
    assert.equal(r.ok, true);
    assert.equal(store.exchanges, MAX_REPLENISH_ROUNDS);
  });

  it(`refuses after ${MAX_REPLENISH_ROUNDS} exchanges that brought nothing`, async () => {
    const store = new SlowGrants(MAX_REPLENISH_ROUNDS + 1);
    const limiter = createRateLimiter({ tiers, store });
    assert.equal(limiter.admit(input, 0).ok, true);
    const r = await limiter.admitWaiting(input, () => 0);
    assert.equal(r.ok, false);
    assert.equal(store.exchanges, MAX_REPLENISH_ROUNDS, "no exchange past the bound");
  });
});
