/**
 * Issue 6: a burst that truly exceeds the account's output-token rate is refused honestly: 429
 * rate_limit_exceeded naming the dimension, x-ratelimit-* headers, and a Retry-After that is right: retrying
 * at once is still refused, retrying after Retry-After succeeds.
 */
import assert from "node:assert/strict";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";
import { postJson, type RawResponse } from "../../support/http.js";
import { assertRateLimitHeaders } from "../../support/rate-limit-headers.js";
import { runConcurrent } from "../../support/run-concurrent.js";

/** OTPM 3,000 (50 tokens/s), burst 300: three 100-token requests empty the bucket; one more refills in 2 s. */
const OTPM = 3_000;
const OTPM_BURST = 300;
const PER_REQUEST = 100;

describe("output-token rate limit under a burst that exceeds it", function () {
  this.timeout(30_000);
  let t: TestCoordinator;

  before(async () => {
    // Every answer is exactly max_tokens long, so admission charges (the 100-token cold prior, clamped to
    // max_tokens) and actual usage agree and the bucket arithmetic is exact.
    const mac = { maxConcurrency: 16, naturalTokens: { min: PER_REQUEST, max: PER_REQUEST } };
    t = await startTestCoordinator({
      tier: "service",
      macs: [mac],
      rateLimitTiers: { service: { outputTokensPerMin: OTPM, outputTokensBurst: OTPM_BURST } },
    });
  });
  after(async () => t?.close());

  const ask = (i: number) =>
    postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
      model: "gpt-oss-20b",
      max_tokens: PER_REQUEST,
      messages: [{ role: "user", content: `burst ${i}` }],
    });

  function assertOutputTokens429(r: RawResponse, what: string): number {
    assert.equal(r.status, 429, `${what}: ${r.text}`);
    const err = (JSON.parse(r.text) as { error: { code: string; type: string; message: string } }).error;
    assert.equal(err.code, "rate_limit_exceeded");
    assert.match(err.message, /output_tokens rate limit exceeded/);
    const h = assertRateLimitHeaders(r.headers, what);
    assert.equal(h.limit["output-tokens"], OTPM);
    assert.ok(
      h.remaining["output-tokens"] < PER_REQUEST,
      `remaining ${h.remaining["output-tokens"]} cannot cover a request`,
    );
    const retryAfter = Number(r.headers.get("retry-after"));
    // Missing tokens ÷ 50 tokens/s, rounded up to whole seconds: never more than a full request's 2 s.
    assert.ok(
      Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= (PER_REQUEST * 60) / OTPM,
      `${what}: Retry-After ${r.headers.get("retry-after")}`,
    );
    return retryAfter;
  }

  it("admits exactly what the burst allows, refuses the rest with a correct Retry-After, then admits after it", async () => {
    const run = await runConcurrent(6, 6, ask);
    const ok = run.results.filter((r) => r.status === 200);
    const refused = run.results.filter((r) => r.status !== 200);
    assert.equal(ok.length, OTPM_BURST / PER_REQUEST, `admitted ${ok.length} of 6`);
    for (const [i, r] of refused.entries()) assertOutputTokens429(r, `refused ${i}`);
    for (const [i, r] of ok.entries()) assertRateLimitHeaders(r.headers, `admitted ${i}`);

    // At once: still refused (Retry-After is not a guess that happens to be generous).
    const again = await ask(100);
    const retryAfter = assertOutputTokens429(again, "immediate retry");

    await new Promise((r) => setTimeout(r, retryAfter * 1000));
    const later = await ask(101);
    assert.equal(later.status, 200, `after Retry-After ${retryAfter} s: ${later.text}`);
    const h = assertRateLimitHeaders(later.headers, "after Retry-After");
    assert.ok(h.remaining["output-tokens"] < PER_REQUEST, "the admitted request took what had refilled");
  });
});
