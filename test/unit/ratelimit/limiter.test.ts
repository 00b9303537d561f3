import assert from "node:assert/strict";
import { createRateLimiter } from "../../../src/ratelimit/limiter.js";
import { rateLimitError } from "../../../src/ratelimit/rate-limit-error.js";
import { errorHeaders, toOpenAIError } from "../../../src/errors/coordinator-error.js";
import { setStatsd, type StatsdLike } from "../../../src/telemetry/metrics.js";
import { OutputEstimator } from "../../../src/util/output-estimator.js";
import type { AdmitInput, AdmitResult, RateTicket } from "../../../src/ratelimit/types.js";

const T0 = 1_700_000_000_000;
const req = (over: Partial<AdmitInput> = {}): AdmitInput => ({
  accountId: "acct",
  keyId: "key",
  tier: "consumer",
  model: "m",
  inputTokens: 100,
  maxOutputTokens: 1000,
  ...over,
});
const ticketOf = (r: AdmitResult): RateTicket => {
  assert.ok(r.ok, "expected admission");
  return r.ticket;
};

describe("rate limiter", () => {
  it("uses the tier defaults and headers in OpenAI's format", () => {
    const l = createRateLimiter();
    const r = l.admit(req({ maxOutputTokens: 1000 }), T0); // cold prior: 512 output tokens
    assert.ok(r.ok);
    assert.equal(r.ticket.chargedOutputTokens, 512);
    assert.deepEqual(r.headers, {
      "x-ratelimit-limit-requests": "1200", // 20 req/s
      "x-ratelimit-remaining-requests": "119",
      "x-ratelimit-reset-requests": "50ms", // 1 request at 20/s
      "x-ratelimit-limit-input-tokens": "5000000",
      "x-ratelimit-remaining-input-tokens": "999900",
      "x-ratelimit-reset-input-tokens": "2ms", // 100 tokens at 83,333/s = 1.2 ms
      "x-ratelimit-limit-output-tokens": "500000",
      "x-ratelimit-remaining-output-tokens": "63488",
      "x-ratelimit-reset-output-tokens": "62ms", // 512 at 8,333/s = 61.4 ms
    });
    const s = createRateLimiter().admit(req({ tier: "service" }), T0);
    assert.equal(s.headers["x-ratelimit-limit-requests"], "12000");
    assert.equal(s.headers["x-ratelimit-limit-output-tokens"], "5000000");
    assert.equal(s.headers["x-ratelimit-remaining-output-tokens"], "511488");
  });

  it("reports the buckets as they stand without charging them (answers refused before admission)", () => {
    const l = createRateLimiter();
    const who = { accountId: "acct", keyId: "key", tier: "consumer" as const };
    const fresh = l.headers(who, T0);
    assert.equal(fresh["x-ratelimit-remaining-requests"], "120");
    assert.equal(fresh["x-ratelimit-reset-requests"], "0s");
    assert.deepEqual(l.headers(who, T0), fresh, "peeking twice charges nothing");
    l.admit(req(), T0);
    assert.equal(l.headers(who, T0)["x-ratelimit-remaining-requests"], "119");
    assert.equal(l.headers(who, T0)["x-ratelimit-remaining-output-tokens"], "63488");
  });

  it("writes reset durations of minutes as Go-style strings", () => {
    const l = createRateLimiter({ tiers: { consumer: { outputTokensPerMin: 10_000, outputTokensBurst: 60_000 } } });
    const r = l.admit(req({ maxOutputTokens: 60_000 }), T0); // prior 8192 of a 60k bucket at 10k/min
    assert.equal(r.headers["x-ratelimit-reset-output-tokens"], "49.152s");
    l.reconcile(ticketOf(r), { inputTokens: 100, outputTokens: 60_000 }, T0); // empty it: 6 min to refill
    const h = l.admit(req({ maxOutputTokens: 1 }), T0 + 0).headers;
    assert.equal(h["x-ratelimit-reset-output-tokens"], "6m0s");
    assert.equal(h["x-ratelimit-remaining-output-tokens"], "0");
  });

  it("rejects with the dimension, a message, headers and a retry time after which admission succeeds", () => {
    const l = createRateLimiter({ tiers: { consumer: { requestsPerSec: 2, requestsBurst: 3 } } });
    for (let i = 0; i < 3; i++) assert.ok(l.admit(req(), T0).ok);
    const r = l.admit(req(), T0);
    assert.equal(r.ok, false);
    assert.ok(!r.ok);
    assert.equal(r.dimension, "requests");
    assert.equal(r.retryAfterMs, 500);
    assert.equal(r.message, "requests rate limit exceeded for account acct; retry in 1 s");
    assert.equal(r.headers["x-ratelimit-remaining-requests"], "0");
    assert.equal(l.admit(req(), T0 + 499).ok, false);
    assert.equal(l.admit(req(), T0 + 500).ok, true);

    const e = rateLimitError(r);
    assert.equal(e.status, 429);
    assert.equal(toOpenAIError(e).error.code, "rate_limit_exceeded");
    assert.equal(errorHeaders(e)["retry-after"], "1");
    assert.equal(errorHeaders(e)["x-ratelimit-limit-requests"], "120");
  });

  it("charges nothing when any bucket rejects (all or nothing)", () => {
    const l = createRateLimiter({ tiers: { consumer: { outputTokensPerMin: 60_000, outputTokensBurst: 1000 } } });
    l.estimator.observe("x", 0, 1); // unrelated key: the cold prior applies to acct
    const big = l.admit(req({ maxOutputTokens: 4000 }), T0); // prior 1000: empties the output bucket
    assert.ok(big.ok);
    const before = l.admit(req({ maxOutputTokens: 0, inputTokens: 0 }), T0).headers;
    const rejected = l.admit(req({ inputTokens: 500_000, maxOutputTokens: 4000 }), T0);
    assert.equal(rejected.ok, false);
    assert.ok(!rejected.ok);
    assert.equal(rejected.dimension, "output_tokens");
    const after = l.admit(req({ maxOutputTokens: 0, inputTokens: 0 }), T0).headers;
    // Only the two zero-token probes consumed requests; the rejected one charged no input tokens.
    assert.equal(Number(before["x-ratelimit-remaining-requests"]) - 1, Number(after["x-ratelimit-remaining-requests"]));
    assert.equal(after["x-ratelimit-remaining-input-tokens"], before["x-ratelimit-remaining-input-tokens"]);
  });

  it("limits a key by its own override and every key by the shared account bucket", () => {
    const l = createRateLimiter({ tiers: { consumer: { requestsPerSec: 1, requestsBurst: 5 } } });
    l.setKeyLimits("strict", { requestsBurst: 2 });
    assert.ok(l.admit(req({ keyId: "strict" }), T0).ok);
    assert.ok(l.admit(req({ keyId: "strict" }), T0).ok);
    const r = l.admit(req({ keyId: "strict" }), T0);
    assert.ok(!r.ok);
    assert.match(r.message, /^requests rate limit exceeded for API key strict;/);
    assert.equal(r.headers["x-ratelimit-limit-requests"], "60");
    // Another key of the same account still has the account's remaining 3.
    for (let i = 0; i < 3; i++) assert.ok(l.admit(req({ keyId: "other" }), T0).ok);
    const a = l.admit(req({ keyId: "other" }), T0);
    assert.ok(!a.ok);
    assert.match(a.message, /for account acct;/);
    // Another account is independent.
    assert.ok(l.admit(req({ accountId: "acct2", keyId: "k2" }), T0).ok);
  });

  it("applies account overrides over the tier and clears them", () => {
    const l = createRateLimiter();
    l.setAccountLimits("acct", { requestsBurst: 1 });
    assert.ok(l.admit(req(), T0).ok);
    assert.equal(l.admit(req(), T0).ok, false);
    l.setAccountLimits("acct", undefined);
    // Raising a limit does not mint tokens: the level carries over and refills at the new rate.
    assert.equal(l.admit(req(), T0).ok, false);
    assert.ok(l.admit(req(), T0 + 50).ok);
    assert.equal(l.admit(req(), T0 + 1000).headers["x-ratelimit-remaining-requests"], "18");
  });

  it("lets bypass accounts through without charging or headers", () => {
    const l = createRateLimiter({ bypassAccountIds: ["admin"], tiers: { consumer: { requestsBurst: 1 } } });
    for (let i = 0; i < 10; i++) {
      const r = l.admit(req({ accountId: "admin" }), T0);
      assert.ok(r.ok);
      assert.deepEqual(r.headers, {});
      l.reconcile(r.ticket, { inputTokens: 1e6, outputTokens: 1e6 }, T0);
    }
    assert.equal(l.store.size, 0);
  });

  it("gives unused tokens back, charges over-runs, and is idempotent per ticket", () => {
    const l = createRateLimiter({ tiers: { consumer: { outputTokensPerMin: 60_000, outputTokensBurst: 10_000 } } });
    const remaining = (t: number) =>
      Number(l.admit(req({ maxOutputTokens: 0, inputTokens: 0 }), t).headers["x-ratelimit-remaining-output-tokens"]);
    const t1 = ticketOf(l.admit(req({ maxOutputTokens: 4000, inputTokens: 300 }), T0)); // prior 1000
    assert.equal(t1.chargedOutputTokens, 1000);
    assert.equal(remaining(T0), 9000);
    l.reconcile(t1, { inputTokens: 300, outputTokens: 200 }, T0);
    assert.equal(remaining(T0), 9800);
    l.reconcile(t1, { inputTokens: 300, outputTokens: 200 }, T0); // no double give-back
    assert.equal(remaining(T0), 9800);
    const t2 = ticketOf(l.admit(req({ maxOutputTokens: 40_000 }), T0)); // still warming up: prior 8192
    l.reconcile(t2, { inputTokens: 100, outputTokens: 40_000 }, T0); // over-run: 31,808 of debt
    assert.equal(remaining(T0), 0);
    const blocked = l.admit(req({ maxOutputTokens: 100 }), T0);
    assert.ok(!blocked.ok);
    assert.equal(blocked.dimension, "output_tokens");
    // Debt is 9800 - 40000 = -30200; 100 tokens fit after 30300 tokens at 1000/s.
    assert.equal(blocked.retryAfterMs, 30_300);
    assert.equal(l.admit(req({ maxOutputTokens: 100 }), T0 + 30_299).ok, false);
    assert.equal(l.admit(req({ maxOutputTokens: 100 }), T0 + 30_300).ok, true);
  });

  it("reconciles input tokens against the prompt estimate", () => {
    const l = createRateLimiter({ tiers: { consumer: { inputTokensPerMin: 60_000, inputTokensBurst: 10_000 } } });
    const t = ticketOf(l.admit(req({ inputTokens: 5000 }), T0));
    l.reconcile(t, { inputTokens: 1000, outputTokens: 0, representative: false }, T0);
    const h = l.admit(req({ inputTokens: 0 }), T0).headers;
    assert.equal(h["x-ratelimit-remaining-input-tokens"], "9000");
  });

  it("learns expected output from representative completions only", () => {
    const estimator = new OutputEstimator({ minSamples: 1, safetyFactor: 1, floorTokens: 0 });
    const l = createRateLimiter({ estimator });
    l.reconcile(ticketOf(l.admit(req({ maxOutputTokens: 32_768 }), T0)), { inputTokens: 1, outputTokens: 700 }, T0);
    l.reconcile(
      ticketOf(l.admit(req({ maxOutputTokens: 32_768 }), T0)),
      { inputTokens: 1, outputTokens: 0, representative: false },
      T0,
    );
    assert.equal(ticketOf(l.admit(req({ maxOutputTokens: 32_768 }), T0)).chargedOutputTokens, 700);
    // Keyed by (account, model).
    assert.equal(ticketOf(l.admit(req({ model: "other", maxOutputTokens: 32_768 }), T0)).chargedOutputTokens, 8192);
  });

  it("can charge the full max_tokens (the old behaviour) when expected output is off", () => {
    const l = createRateLimiter({ chargeExpectedOutput: false });
    assert.equal(ticketOf(l.admit(req({ maxOutputTokens: 32_768 }), T0)).chargedOutputTokens, 32_768);
  });

  it("records rejections and output deltas as metrics", () => {
    const lines: string[] = [];
    const fake: StatsdLike = {
      increment: (s, v, t) => lines.push(`${s}:${v}|c|${JSON.stringify(t)}`),
      distribution: (s, v, t) => lines.push(`${s}:${v}|d|${JSON.stringify(t)}`),
      gauge: () => {},
    };
    setStatsd(fake);
    try {
      const l = createRateLimiter({ tiers: { service: { requestsBurst: 1 } } });
      const t = ticketOf(l.admit(req({ tier: "service", maxOutputTokens: 4000 }), T0));
      l.reconcile(t, { inputTokens: 100, outputTokens: 300 }, T0);
      assert.equal(l.admit(req({ tier: "service" }), T0).ok, false);
    } finally {
      setStatsd(undefined);
    }
    assert.deepEqual(lines, [
      'ratelimit.output_admission.delta_tokens:700|d|{"tier":"service","direction":"under"}',
      'ratelimit.rejections:1|c|{"tier":"service","dimension":"requests"}',
    ]);
  });

  it("evicts idle full buckets after 30 minutes but keeps buckets in debt", () => {
    const l = createRateLimiter({ tiers: { consumer: { outputTokensPerMin: 60, outputTokensBurst: 10 } } });
    l.admit(req({ accountId: "idle" }), T0);
    const t = ticketOf(l.admit(req({ accountId: "debtor", maxOutputTokens: 10 }), T0));
    l.reconcile(t, { inputTokens: 0, outputTokens: 1_000_000 }, T0); // ~11.6 days of debt at 60/min
    assert.equal(l.store.size, 6);
    assert.equal(l.evictIdle(T0 + 29 * 60_000), 0);
    // idle: 3 buckets; debtor: requests and input refilled, output still in debt.
    assert.equal(l.evictIdle(T0 + 30 * 60_000), 5);
    assert.equal(l.store.size, 1);
    assert.equal(l.admit(req({ accountId: "debtor", maxOutputTokens: 1 }), T0 + 30 * 60_000).ok, false);
  });

  it("sweeps idle buckets from admit without timers", () => {
    const l = createRateLimiter({ idleEvictMs: 1000, pruneIntervalMs: 1000 });
    l.admit(req({ accountId: "a" }), T0);
    l.admit(req({ accountId: "b" }), T0 + 999);
    assert.equal(l.store.size, 6);
    l.admit(req({ accountId: "c" }), T0 + 60_000);
    assert.equal(l.store.size, 3);
  });

  it("scales every rate and burst by the process share and reports account-wide headers", () => {
    const l = createRateLimiter({ processShare: 1 / 4, tiers: { consumer: { requestsPerSec: 4, requestsBurst: 8 } } });
    assert.ok(l.admit(req(), T0).ok);
    const r = l.admit(req(), T0);
    assert.ok(r.ok);
    assert.equal(l.admit(req(), T0).ok, false); // this process's share of the burst is 2
    assert.equal(r.headers["x-ratelimit-limit-requests"], "240");
    assert.equal(r.headers["x-ratelimit-limit-output-tokens"], "500000");
    assert.equal(r.headers["x-ratelimit-remaining-requests"], "0");
    assert.equal(l.admit(req(), T0 + 1000).ok, true); // 1 req/s per process
    assert.throws(() => createRateLimiter({ processShare: 0 }), RangeError);
  });
});
