/**
 * Issue 6, the load-test report's failing cell: a service account sending 16 concurrent requests with
 * `max_tokens: 32768` whose answers are short. Charging max_tokens up front costs 16 × 32,768 = 524,288 output
 * tokens, more than the 512k OTPM burst, which is how the old limiter refused 36 % of them with the fleet idle.
 * Charging the expected output (cold prior 8,192, then the learnt length) must refuse none.
 */
import assert from "node:assert/strict";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";
import { postJson } from "../../support/http.js";
import { assertRateLimitHeaders } from "../../support/rate-limit-headers.js";
import { runConcurrent } from "../../support/run-concurrent.js";

describe("rate limits charge expected output, not max_tokens (service tier defaults)", function () {
  this.timeout(30_000);
  let t: TestCoordinator;

  before(async () => {
    // Short natural answers (20-60 tokens) against a 32k budget; 2 × 16 slots so all 16 run at once.
    const mac = { maxConcurrency: 16, naturalTokens: { min: 20, max: 60 } };
    t = await startTestCoordinator({ tier: "service", macs: [mac, mac], config: { queueLimit: 64 } });
  });
  after(async () => t?.close());

  it("admits 4 rounds of 16 concurrent 32k-max_tokens requests with zero 429s and x-ratelimit-* headers on each", async () => {
    const url = `${t.apiBase}/chat/completions`;
    for (let round = 0; round < 4; round++) {
      const run = await runConcurrent(16, 16, (i) =>
        postJson(url, t.apiKey, {
          model: "gpt-oss-20b",
          max_tokens: 32_768,
          messages: [{ role: "user", content: `round ${round} request ${i}` }],
          ...(i % 2 === 0 ? { stream: true } : {}),
        }),
      );
      assert.equal(run.peakInFlight, 16);
      const statuses = run.results.map((r) => r.status);
      assert.deepEqual(
        statuses,
        new Array(16).fill(200),
        `round ${round}: ${run.results.find((r) => r.status !== 200)?.text}`,
      );
      for (const [i, r] of run.results.entries()) {
        const h = assertRateLimitHeaders(r.headers, `round ${round} request ${i}`);
        // The service tier's defaults, as per-minute limits: 200 req/s, ITPM 50M, OTPM 5M.
        assert.deepEqual(h.limit, { requests: 12_000, "input-tokens": 50_000_000, "output-tokens": 5_000_000 });
        // Remaining OTPM never drops anywhere near what 16 × 32k would have cost: at most the 8,192-token prior
        // each (reached exactly when all 16 are admitted within one millisecond, so no refill falls between them).
        assert.ok(
          h.remaining["output-tokens"] >= 512_000 - 16 * 8_192,
          `remaining output tokens ${h.remaining["output-tokens"]}`,
        );
      }
    }
  });

  it("sends the x-ratelimit-* headers on an error answered after admission (402 insufficient_quota)", async () => {
    const accounts = t.coordinator.ledger.accounts;
    const broke = await accounts.createAccount({ name: "broke", tier: "service" });
    const { apiKey } = await accounts.issueApiKey({ accountId: broke.id });
    const r = await postJson(`${t.apiBase}/chat/completions`, apiKey, {
      model: "gpt-oss-20b",
      max_tokens: 32_768,
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(r.status, 402, r.text);
    assert.equal((JSON.parse(r.text) as { error: { code: string } }).error.code, "insufficient_quota");
    assertRateLimitHeaders(r.headers, "402 response");
  });
});
