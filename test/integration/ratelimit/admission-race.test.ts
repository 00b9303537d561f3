/**
 * Issue 6: under a concurrent burst through HTTP, the number of requests admitted equals exactly what the
 * bucket allows: no over-admission from races between admissions, and none from reconciliations landing
 * while the burst is still being admitted.
 */
import assert from "node:assert/strict";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";
import { postJson, type RawResponse } from "../../support/http.js";
import { runConcurrent } from "../../support/run-concurrent.js";

const N = 40;
/** Service tier: 10 requests at once, then one every 1,000 s (nothing refills during the test). */
const REQUEST_BURST = 10;
/** Consumer tier: 1,000 output tokens at once, 1 per minute after that; 100-token requests → 10 fit. */
const OTPM_BURST = 1_000;
const PER_REQUEST = 100;

describe("rate-limit admission under a concurrent burst through HTTP", function () {
  this.timeout(30_000);
  let t: TestCoordinator;

  before(async () => {
    const mac = { maxConcurrency: 24, naturalTokens: { min: PER_REQUEST, max: PER_REQUEST } };
    t = await startTestCoordinator({
      tier: "service",
      macs: [mac, mac],
      config: { queueLimit: 100 },
      rateLimitTiers: {
        service: { requestsPerSec: 0.001, requestsBurst: REQUEST_BURST },
        consumer: { outputTokensPerMin: 1, outputTokensBurst: OTPM_BURST },
      },
    });
  });
  after(async () => t?.close());

  const burst = (apiKey: string) =>
    runConcurrent(N, N, (i) =>
      postJson(`${t.apiBase}/chat/completions`, apiKey, {
        model: "gpt-oss-20b",
        max_tokens: PER_REQUEST,
        messages: [{ role: "user", content: `race ${i}` }],
        ...(i % 2 === 0 ? { stream: true } : {}),
      }),
    );

  function assertRefused(refused: RawResponse[], dimension: string): void {
    for (const r of refused) {
      assert.equal(r.status, 429, r.text);
      const err = (JSON.parse(r.text) as { error: { code: string; message: string } }).error;
      assert.equal(err.code, "rate_limit_exceeded");
      assert.ok(err.message.startsWith(`${dimension} rate limit exceeded`), err.message);
      assert.ok(Number(r.headers.get("retry-after")) >= 1);
    }
  }

  it(`admits exactly ${REQUEST_BURST} of ${N} concurrent requests against a request burst of ${REQUEST_BURST}`, async () => {
    const run = await burst(t.apiKey);
    assert.equal(run.peakInFlight, N);
    const ok = run.results.filter((r) => r.status === 200);
    assert.equal(ok.length, REQUEST_BURST, `admitted ${ok.length}`);
    assertRefused(
      run.results.filter((r) => r.status !== 200),
      "requests",
    );
  });

  it(`admits exactly ${OTPM_BURST / PER_REQUEST} of ${N} concurrent ${PER_REQUEST}-token requests against an output-token burst of ${OTPM_BURST}`, async () => {
    const accounts = t.coordinator.ledger.accounts;
    const account = await accounts.createAccount({
      name: "consumer",
      tier: "consumer",
      initialCreditMicroUsd: 10_000_000n,
    });
    const { apiKey } = await accounts.issueApiKey({ accountId: account.id });
    const run = await burst(apiKey);
    const ok = run.results.filter((r) => r.status === 200);
    assert.equal(ok.length, OTPM_BURST / PER_REQUEST, `admitted ${ok.length}`);
    assertRefused(
      run.results.filter((r) => r.status !== 200),
      "output_tokens",
    );
    // Reconciliation gave nothing back (actual = charged) and refilled ~nothing: still no room for one more.
    const more = await postJson(`${t.apiBase}/chat/completions`, apiKey, {
      model: "gpt-oss-20b",
      max_tokens: PER_REQUEST,
      messages: [{ role: "user", content: "one more" }],
    });
    assertRefused([more], "output_tokens");
  });
});
