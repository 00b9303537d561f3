/**
 * The load-test report's cell (Issue 2) at the unit level: a service account sending 16 concurrent requests
 * with max_tokens 32768 whose completions are short must not be rate limited; a burst that truly exceeds the
 * account's OTPM must be, with a Retry-After after which admission succeeds.
 */
import assert from "node:assert/strict";
import { createRateLimiter, type KeyedRateLimiter } from "../../../src/ratelimit/limiter.js";
import type { AdmitInput, RateTicket } from "../../../src/ratelimit/types.js";

const T0 = 1_700_000_000_000;
const MAX = 32_768;
const req: AdmitInput = {
  accountId: "openrouter",
  keyId: "k1",
  tier: "service",
  model: "gpt-oss-20b",
  inputTokens: 2000,
  maxOutputTokens: MAX,
};

/** Admits and reconciles `outputs.length` sequential requests long before T0 (the buckets are full again by T0). */
function warmUp(l: KeyedRateLimiter, outputs: number[]): void {
  let t = T0 - 3_600_000;
  for (const out of outputs) {
    const r = l.admit(req, t);
    assert.ok(r.ok);
    l.reconcile(r.ticket, { inputTokens: 2000, outputTokens: out }, t + 1000);
    t += 2000;
  }
}

/** Fires `n` admissions at `nowMs` (all in flight together). */
function burst(
  l: KeyedRateLimiter,
  n: number,
  nowMs: number,
): { admitted: RateTicket[]; rejected: Array<{ dimension: string; retryAfterMs: number; message: string }> } {
  const admitted: RateTicket[] = [];
  const rejected: Array<{ dimension: string; retryAfterMs: number; message: string }> = [];
  for (let i = 0; i < n; i++) {
    const r = l.admit(req, nowMs);
    if (r.ok) admitted.push(r.ticket);
    else rejected.push(r);
  }
  return { admitted, rejected };
}

describe("expected-output admission (report Issue 2)", () => {
  it("reproduces the old wall: charging full max_tokens rejects the 16th of 16 concurrent 32k requests", () => {
    const l = createRateLimiter({ chargeExpectedOutput: false });
    const { admitted, rejected } = burst(l, 16, T0);
    assert.equal(admitted.length, 15); // 15 × 32768 = 491,520 ≤ 512k < 16 × 32768
    assert.equal(rejected.length, 1);
    assert.equal(rejected[0]!.dimension, "output_tokens");
  });

  it("admits 16 concurrent 32k-budget requests with short completions, wave after wave, with zero rejections", () => {
    const l = createRateLimiter();
    warmUp(l, [600, 900, 400, 1200, 700]);
    const shortOutputs = [300, 600, 1500, 2400, 800, 450, 1100, 650];
    let rejections = 0;
    let admittedTotal = 0;
    // One wave of 16 every 2 s for 2 minutes; each request finishes 1.5 s after admission.
    for (let wave = 0; wave < 60; wave++) {
      const t = T0 + wave * 2000;
      const { admitted, rejected } = burst(l, 16, t);
      rejections += rejected.length;
      admittedTotal += admitted.length;
      admitted.forEach((ticket, i) => {
        assert.ok(ticket.chargedOutputTokens < 8192, `charge ${ticket.chargedOutputTokens} should follow the EWMA`);
        l.reconcile(
          ticket,
          { inputTokens: 2000, outputTokens: shortOutputs[(wave + i) % shortOutputs.length]! },
          t + 1500,
        );
      });
    }
    assert.equal(rejections, 0);
    assert.equal(admittedTotal, 960);
  });

  it("admits a cold account's first 16 concurrent 32k requests on the conservative prior", () => {
    const l = createRateLimiter();
    const { admitted, rejected } = burst(l, 16, T0);
    assert.equal(rejected.length, 0);
    assert.equal(admitted[0]!.chargedOutputTokens, 8192);
  });

  it("rejects a burst that truly exceeds OTPM and admits again exactly at Retry-After", () => {
    const l = createRateLimiter();
    warmUp(l, [31_000, 32_768, 30_500, 32_000, 32_768]); // completions that really use the budget
    const { admitted, rejected } = burst(l, 20, T0);
    assert.equal(admitted.length, 15);
    assert.equal(admitted[0]!.chargedOutputTokens, MAX);
    assert.equal(rejected.length, 5);
    const first = rejected[0]!;
    assert.equal(first.dimension, "output_tokens");
    // 512,000 - 15 × 32,768 = 20,480 left; 12,288 more at 5M/min (83,333.3/s) = 147.5 ms.
    assert.equal(first.retryAfterMs, 148);
    assert.equal(first.message, "output_tokens rate limit exceeded for account openrouter; retry in 1 s");
    assert.equal(l.admit(req, T0 + first.retryAfterMs - 1).ok, false);
    assert.equal(l.admit(req, T0 + first.retryAfterMs).ok, true);
  });

  it("charges the over-run of an under-estimated burst as debt, so the next burst waits for it", () => {
    const l = createRateLimiter();
    warmUp(l, [500, 500, 500, 500, 500]); // the estimator expects 750
    const { admitted } = burst(l, 16, T0);
    assert.equal(admitted.length, 16);
    // The account then writes 32k each: 524,288 actual against a 512k burst. Without the over-run charge the
    // bucket would still hold ~508k here; with it the bucket is ~4k in debt and the next 32k charge waits ~440 ms.
    for (const t of admitted) l.reconcile(t, { inputTokens: 2000, outputTokens: MAX }, T0 + 100);
    const r = l.admit(req, T0 + 100);
    assert.ok(!r.ok);
    assert.equal(r.dimension, "output_tokens");
    assert.ok(r.retryAfterMs > 400 && r.retryAfterMs < 500, `retryAfterMs ${r.retryAfterMs}`);
    const later = T0 + 100 + r.retryAfterMs;
    assert.equal(l.admit(req, later - 1).ok, false);
    assert.equal(l.admit(req, later).ok, true);
  });
});
