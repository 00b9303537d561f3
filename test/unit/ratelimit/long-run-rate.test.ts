/**
 * Debt keeps the long-run rate exact: admission charges an estimate, reconciliation settles the difference,
 * and over 10 simulated minutes of saturating demand the tokens actually produced match the OTPM rate.
 */
import assert from "node:assert/strict";
import { createRateLimiter } from "../../../src/ratelimit/limiter.js";
import type { AdmitInput, RateTicket } from "../../../src/ratelimit/types.js";

const T0 = 1_700_000_000_000;
const RATE_PER_MIN = 600_000; // 10k tokens/s
const BURST = 10_000;
const MINUTES = 10;
const TICK_MS = 100;
const LATENCY_MS = 2000;

/** Deterministic heavy-tailed completions: mostly short, sometimes the whole budget. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0) / 2 ** 32;
}

function simulate(reconcileOverRuns: boolean): { produced: number; rejections: number } {
  const l = createRateLimiter({
    tiers: {
      consumer: { outputTokensPerMin: RATE_PER_MIN, outputTokensBurst: BURST, requestsPerSec: 1e6, requestsBurst: 1e6 },
    },
  });
  const random = lcg(42);
  const input: AdmitInput = {
    accountId: "a",
    keyId: "k",
    tier: "consumer",
    model: "m",
    inputTokens: 10,
    maxOutputTokens: 8000,
  };
  const inflight: Array<{ doneMs: number; ticket: RateTicket; out: number }> = [];
  let produced = 0;
  let rejections = 0;
  const endMs = T0 + MINUTES * 60_000;
  for (let t = T0; t < endMs; t += TICK_MS) {
    for (let i = inflight.length - 1; i >= 0; i--) {
      const f = inflight[i]!;
      if (f.doneMs > t) continue;
      inflight.splice(i, 1);
      // The broken variant never charges an over-run (it only gives back unused tokens).
      const reported = reconcileOverRuns ? f.out : Math.min(f.out, f.ticket.chargedOutputTokens);
      l.reconcile(f.ticket, { inputTokens: 10, outputTokens: reported }, t);
    }
    // Saturating demand: keep asking until the limiter says no.
    for (;;) {
      const r = l.admit(input, t);
      if (!r.ok) {
        rejections++;
        break;
      }
      const out = random() < 0.1 ? 8000 : 200 + Math.floor(random() * 600);
      produced += out;
      inflight.push({ doneMs: t + LATENCY_MS, ticket: r.ticket, out });
    }
  }
  return { produced, rejections };
}

describe("long-run output rate with reconciliation debt", () => {
  it("produces the OTPM rate within 1 % over 10 simulated minutes", () => {
    const { produced, rejections } = simulate(true);
    const allowed = RATE_PER_MIN * MINUTES;
    const error = Math.abs(produced - allowed) / allowed;
    assert.ok(rejections > 1000, "demand must saturate the limit");
    assert.ok(error < 0.01, `produced ${produced} vs ${allowed}: ${(error * 100).toFixed(2)} % off`);
  });

  it("would overshoot without charging over-runs (the check above can fail)", () => {
    const { produced } = simulate(false);
    assert.ok(produced > RATE_PER_MIN * MINUTES * 1.1, `produced ${produced}`);
  });
});
