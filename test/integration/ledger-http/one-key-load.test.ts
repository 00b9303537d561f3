/**
 * Issue 5, "Done when": the load-test report's failing cell (272 requests at concurrency 80, one API key) through
 * the real HTTP API, dispatcher, simulated Macs over gRPC and the Postgres ledger. The old hot-row ledger
 * answered 52 of these with 503 before routing; the leased ledger must answer none of them with an error and
 * still charge every request exactly its usage.
 */
import assert from "node:assert/strict";
import { sql } from "kysely";
import { verifyLedger } from "../../../src/ledger/verify-ledger.js";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";
import { postJson, sseData } from "../../support/http.js";
import { quantile, runConcurrent } from "../../support/run-concurrent.js";

const TOTAL = 272;
const CONCURRENCY = 80;
/** gpt-oss-20b catalog price, µUSD per million tokens. */
const PRICE_IN = 50_000n;
const PRICE_OUT = 200_000n;

/** The service-tier cost of a usage, computed independently of src/ledger/pricing.ts. */
function expectedCost(promptTokens: number, completionTokens: number): bigint {
  const ceil = (a: bigint) => (a + 999_999n) / 1_000_000n;
  const raw = ceil(BigInt(promptTokens) * PRICE_IN) + ceil(BigInt(completionTokens) * PRICE_OUT);
  return raw === 0n ? 0n : raw < 1n ? 1n : raw;
}

interface Outcome {
  status: number;
  requestId: string;
  promptTokens: number;
  completionTokens: number;
  latencyMs: number;
  error?: string;
}

describe("ledger under one-key load through the HTTP API (real Postgres)", function () {
  this.timeout(60_000);
  let t: TestCoordinator;

  before(async () => {
    // Four warm instant Macs with 32 slots each: 128 slots for 80 in flight, so nothing but the ledger and the
    // limiter stands between a request and a provider. Service tier: the report's aggregator.
    const mac = { maxConcurrency: 32 };
    t = await startTestCoordinator({
      tier: "service",
      creditMicroUsd: 100_000_000n,
      macs: [mac, mac, mac, mac],
      config: { queueLimit: 200 },
    });
  });
  after(async () => t?.close());

  it(`answers ${TOTAL} requests at concurrency ${CONCURRENCY} with one key, all 200, each charged exactly its usage`, async () => {
    const url = `${t.apiBase}/chat/completions`;
    const run = await runConcurrent<Outcome>(TOTAL, CONCURRENCY, async (i) => {
      const stream = i % 4 === 0;
      const body = {
        model: "gpt-oss-20b",
        max_tokens: 256,
        messages: [{ role: "user", content: `request ${i}: summarise the ledger design in one paragraph` }],
        ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
      };
      const r = await postJson(url, t.apiKey, body);
      let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
      if (r.status === 200) {
        if (stream)
          usage = (
            sseData(r.text).find((e) => (e as { usage?: unknown })?.usage) as { usage: typeof usage } | undefined
          )?.usage;
        else usage = (JSON.parse(r.text) as { usage: typeof usage }).usage;
      }
      return {
        status: r.status,
        requestId: r.headers.get("x-request-id") ?? "",
        promptTokens: usage?.prompt_tokens ?? -1,
        completionTokens: usage?.completion_tokens ?? -1,
        latencyMs: r.elapsedMs,
        ...(r.status === 200 ? {} : { error: r.text.slice(0, 200) }),
      };
    });

    const failures = run.results.filter((o) => o.status !== 200);
    const latencies = run.results.map((o) => o.latencyMs);
    const line =
      `${TOTAL} @ ${CONCURRENCY}: ${run.elapsedMs.toFixed(0)} ms total, ${((TOTAL * 1000) / run.elapsedMs).toFixed(0)} req/s, ` +
      `p50 ${quantile(latencies, 0.5).toFixed(1)} ms, p99 ${quantile(latencies, 0.99).toFixed(1)} ms, ` +
      `peak in flight ${run.peakInFlight}, errors ${failures.length}`;
    console.log(`      ${line}`);
    assert.deepEqual(
      failures.map((f) => `${f.status} ${f.error}`),
      [],
      "every request answered 200",
    );
    assert.equal(run.peakInFlight, CONCURRENCY);
    for (const o of run.results) {
      assert.match(o.requestId, /^req_/);
      assert.ok(o.completionTokens > 0 && o.promptTokens > 0, `usage reported for ${o.requestId}`);
    }

    await t.coordinator.ledger.flush();
    assert.deepEqual(await verifyLedger(t.db.db), { ok: true, violations: [], quarantined: [] });

    // Per request: the ledger row is settled and its debit is the price of the usage the client was told.
    const { rows } = await sql<{
      request_id: string;
      state: string;
      debit: bigint;
      prompt_tokens: bigint;
      completion_tokens: bigint;
    }>`
      SELECT request_id, state, consumer_debit_micro_usd AS debit, prompt_tokens, completion_tokens
      FROM ledger_requests WHERE account_id = ${t.accountId}`.execute(t.db.db);
    assert.equal(rows.length, TOTAL, "one ledger row per request");
    const byId = new Map(rows.map((r) => [r.request_id, r]));
    let expectedTotal = 0n;
    for (const o of run.results) {
      const row = byId.get(o.requestId);
      assert.ok(row, `ledger row for ${o.requestId}`);
      assert.equal(row.state, "settled");
      assert.equal(row.prompt_tokens, BigInt(o.promptTokens));
      assert.equal(row.completion_tokens, BigInt(o.completionTokens));
      const cost = expectedCost(o.promptTokens, o.completionTokens);
      assert.equal(row.debit, cost, `debit of ${o.requestId}`);
      expectedTotal += cost;
    }

    // The account's debit entries (one per request) sum to the settled costs, and the balance moved by that much.
    const entries = await sql<{ n: bigint; total: bigint }>`
      SELECT count(*)::int8 AS n, coalesce(-sum(amount_micro_usd), 0)::int8 AS total
      FROM ledger_entries WHERE account_id = ${t.accountId} AND kind = 'debit'`.execute(t.db.db);
    assert.equal(entries.rows[0]!.n, BigInt(TOTAL));
    assert.equal(entries.rows[0]!.total, expectedTotal);
    const account = await t.coordinator.ledger.accounts.getAccount(t.accountId);
    assert.equal(account?.balanceMicroUsd, 100_000_000n - expectedTotal);
  });
});
