/**
 * Operator overrides in the limiter (SetLimits): carried by the principal, applied at once by the process that
 * served the admin call, converted from per-minute API units, and concurrency.
 */
import assert from "node:assert/strict";
import type { RateLimitOverride } from "../../../src/accounts/types.js";
import {
  effectiveLimits,
  overrideToTierLimits,
  rateLimitOverrideProblem,
} from "../../../src/ratelimit/limit-override.js";
import { createRateLimiter } from "../../../src/ratelimit/limiter.js";
import { defaultTierLimits } from "../../../src/ratelimit/tier-limits.js";
import type { AdmitInput, AdmitResult, RateTicket } from "../../../src/ratelimit/types.js";

const T0 = 1_700_000_000_000;
const req = (over: Partial<AdmitInput> = {}): AdmitInput => ({
  accountId: "acct",
  keyId: "key",
  tier: "consumer",
  model: "m",
  inputTokens: 10,
  maxOutputTokens: 10,
  ...over,
});
const ticketOf = (r: AdmitResult): RateTicket => {
  assert.ok(r.ok, "expected admission");
  return r.ticket;
};
const done = { inputTokens: 10, outputTokens: 10 };

describe("operator limit overrides", () => {
  describe("conversion and bounds", () => {
    it("turns per-minute rates into bucket limits, the burst following a lowered rate unless set", () => {
      const base = defaultTierLimits.consumer;
      assert.deepEqual(overrideToTierLimits({ requestsPerMin: 6 }, base), { requestsPerSec: 0.1, requestsBurst: 6 });
      assert.deepEqual(
        overrideToTierLimits({ requestsPerMin: 6000 }, base),
        { requestsPerSec: 100, requestsBurst: 120 },
        "raising a rate keeps the burst",
      );
      assert.deepEqual(overrideToTierLimits({ requestsPerMin: 6, requestsBurst: 1 }, base), {
        requestsPerSec: 0.1,
        requestsBurst: 1,
      });
      assert.deepEqual(overrideToTierLimits({ inputTokensBurst: 10 }, base), { inputTokensBurst: 10 });
      assert.deepEqual(overrideToTierLimits({ outputTokensPerMin: 1000, maxConcurrentRequests: 3 }, base), {
        outputTokensPerMin: 1000,
        outputTokensBurst: 1000,
        maxConcurrentRequests: 3,
      });
    });

    it("names the first field out of bounds", () => {
      assert.equal(rateLimitOverrideProblem({ requestsPerMin: 1, maxConcurrentRequests: 100_000 }), undefined);
      assert.equal(rateLimitOverrideProblem({ requestsPerMin: 0 })?.field, "requestsPerMin");
      assert.equal(rateLimitOverrideProblem({ inputTokensPerMin: 1.5 })?.field, "inputTokensPerMin");
      assert.equal(rateLimitOverrideProblem({ outputTokensBurst: 1_000_000_001 })?.field, "outputTokensBurst");
      assert.equal(rateLimitOverrideProblem({ maxConcurrentRequests: 100_001 })?.field, "maxConcurrentRequests");
    });

    it("reports the effective limits: the tier's, the account's over them, and the stricter of key and account", () => {
      const tier = defaultTierLimits.consumer;
      assert.deepEqual(effectiveLimits(tier, undefined), {
        requestsPerMin: 1200,
        requestsBurst: 120,
        inputTokensPerMin: 5_000_000,
        inputTokensBurst: 1_000_000,
        outputTokensPerMin: 500_000,
        outputTokensBurst: 64_000,
      });
      const account: RateLimitOverride = { requestsPerMin: 60, maxConcurrentRequests: 4 };
      const key: RateLimitOverride = { requestsPerMin: 600, inputTokensPerMin: 1000, maxConcurrentRequests: 8 };
      const e = effectiveLimits(tier, account, key);
      assert.equal(e.requestsPerMin, 60);
      assert.equal(e.inputTokensPerMin, 1000);
      assert.equal(e.maxConcurrentRequests, 4);
      assert.equal(e.outputTokensPerMin, 500_000);
    });
  });

  describe("in the limiter", () => {
    it("limits by the overrides the principal carries, and shows them in the headers", () => {
      const l = createRateLimiter();
      const keyLimits = { requestsPerMin: 2 };
      const a = l.admit(req({ keyLimits }), T0);
      assert.equal(a.headers["x-ratelimit-limit-requests"], "2");
      assert.equal(a.headers["x-ratelimit-remaining-requests"], "1");
      assert.ok(l.admit(req({ keyLimits }), T0).ok);
      const refused = l.admit(req({ keyLimits }), T0);
      assert.ok(!refused.ok);
      assert.match(refused.message, /for API key key;/);
      assert.ok(l.admit(req({ keyId: "other" }), T0).ok, "another key of the account is not limited by it");

      const accountLimits = { requestsPerMin: 600, outputTokensPerMin: 6000 };
      const b = l.admit(req({ accountId: "acct2", accountLimits }), T0);
      assert.equal(b.headers["x-ratelimit-limit-requests"], "600");
      assert.equal(b.headers["x-ratelimit-limit-output-tokens"], "6000");
    });

    it("applies an override served by this process at once, over what principals carry, for one key-cache TTL", () => {
      const l = createRateLimiter({ recentOverrideMs: 5_000 });
      const stale = { requestsPerMin: 600 }; // what a cached principal still carries
      l.applyOverride({ kind: "key", keyId: "key" }, { requestsPerMin: 60 }, T0);
      assert.equal(l.headers(req({ keyLimits: stale }), T0 + 4_999)["x-ratelimit-limit-requests"], "60");
      assert.equal(
        l.headers(req({ keyLimits: stale }), T0 + 5_000)["x-ratelimit-limit-requests"],
        "600",
        "then the principal's, now fresh",
      );

      l.applyOverride({ kind: "account", accountId: "acct" }, undefined, T0);
      assert.equal(
        l.headers(req({ accountLimits: { requestsPerMin: 6 } }), T0 + 1)["x-ratelimit-limit-requests"],
        "1200",
        "a clear wins too",
      );
      assert.equal(
        l.headers(req({ accountLimits: { requestsPerMin: 6 } }), T0 + 5_000)["x-ratelimit-limit-requests"],
        "6",
      );
    });

    it("holds a concurrency slot from admission to reconciliation, per account and per key", () => {
      const l = createRateLimiter();
      const accountLimits = { maxConcurrentRequests: 2 };
      const first = ticketOf(l.admit(req({ accountLimits }), T0));
      const second = l.admit(req({ accountLimits, keyId: "key2" }), T0);
      assert.equal(second.headers["x-ratelimit-limit-concurrent-requests"], "2");
      assert.equal(second.headers["x-ratelimit-remaining-concurrent-requests"], "0");
      const third = l.admit(req({ accountLimits, keyId: "key3" }), T0);
      assert.ok(!third.ok);
      assert.equal(third.dimension, "concurrent_requests");
      assert.match(third.message, /concurrent_requests limit \(2\) reached for account acct/);
      assert.equal(third.headers["x-ratelimit-remaining-requests"], "118", "a refusal for concurrency charges nothing");

      l.reconcile(first, done, T0 + 10);
      l.reconcile(first, done, T0 + 10); // idempotent: frees one slot, once
      assert.ok(l.admit(req({ accountLimits, keyId: "key3" }), T0 + 20).ok);
      assert.ok(!l.admit(req({ accountLimits, keyId: "key4" }), T0 + 20).ok);

      // A key's own limit is stricter than its account's.
      const keyLimits = { maxConcurrentRequests: 1 };
      const k = ticketOf(l.admit(req({ accountId: "acct2", keyLimits }), T0));
      const refused = l.admit(req({ accountId: "acct2", keyLimits }), T0);
      assert.ok(!refused.ok);
      assert.match(refused.message, /for API key key;/);
      assert.ok(l.admit(req({ accountId: "acct2", keyId: "other" }), T0).ok);
      l.reconcile(k, done, T0 + 1);
      assert.ok(l.admit(req({ accountId: "acct2", keyLimits }), T0 + 2).ok);
    });

    it("keeps a lowered then raised rate's new limits even while every request is refused", () => {
      const l = createRateLimiter();
      const low = { requestsPerMin: 1 };
      assert.ok(l.admit(req({ accountLimits: low }), T0).ok);
      assert.ok(!l.admit(req({ accountLimits: low }), T0).ok);
      // Raised: the refused attempt re-limits the bucket, so it refills at 20/s from here, not at 1/min.
      assert.ok(!l.admit(req(), T0 + 1).ok);
      assert.ok(l.admit(req(), T0 + 60).ok);
    });
  });
});
