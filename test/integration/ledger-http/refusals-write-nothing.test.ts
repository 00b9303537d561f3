/**
 * Refusals cost nothing durable (issue 13, item 4): a request refused before it reaches a provider (the queue's
 * or the limiter's 429, 402, any 4xx) writes no ledger row. An overload used to insert and then release one row
 * per queue-full 429 (13,547 such rows against 959 settled in 30 s). Every request that reached a provider still
 * has its row, and the ledger's invariants hold.
 */
import assert from "node:assert/strict";
import { sql } from "kysely";
import { verifyLedger } from "../../../src/ledger/verify-ledger.js";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";
import { postJson } from "../../support/http.js";

describe("refused requests write no ledger row", function () {
  this.timeout(60_000);
  let t: TestCoordinator | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  const body = { model: "gpt-oss-20b", max_tokens: 32, messages: [{ role: "user", content: "tell me something" }] };

  async function ledgerRows(c: TestCoordinator): Promise<{ state: string; n: number }[]> {
    await c.coordinator.ledger.flush();
    const { rows } = await sql<{ state: string; n: string }>`
      SELECT state, count(*)::text AS n FROM ledger_requests WHERE account_id = ${c.accountId} GROUP BY state ORDER BY state`.execute(
      c.db.db,
    );
    return rows.map((r) => ({ state: r.state, n: Number(r.n) }));
  }

  async function assertLedgerClean(c: TestCoordinator): Promise<void> {
    assert.deepEqual(await verifyLedger(c.db.db), { ok: true, violations: [], quarantined: [] });
  }

  it("writes one row per dispatched request under overload, none for the queue's 429s", async () => {
    t = await startTestCoordinator({
      config: { queueLimit: 2, queueWaitMs: 30_000 },
      // One slow Mac that runs one request at a time: ~20 tokens at ~70 tok/s each.
      macs: [{ maxConcurrency: 1, instant: false, timeScale: 1, diskGbs: 1_000, naturalTokens: { min: 20, max: 20 } }],
    });
    const url = `${t.apiBase}/chat/completions`;
    const arrivals = 60;
    const results = await Promise.all(Array.from({ length: arrivals }, () => postJson(url, t!.apiKey, body)));
    const served = results.filter((r) => r.status === 200).length;
    const refused = results.filter((r) => r.status === 429);
    assert.equal(
      served + refused.length,
      arrivals,
      `only 200 or 429: ${[...new Set(results.map((r) => r.status))].join(",")}`,
    );
    assert.ok(refused.length >= arrivals - 10, `most arrivals are refused by the full queue (${refused.length})`);
    for (const r of refused) assert.match(r.text, /queue for gpt-oss-20b is full/);

    const rows = await ledgerRows(t);
    assert.deepEqual(
      rows,
      [{ state: "settled", n: served }],
      "one settled row per served request; nothing for the refusals",
    );
    await assertLedgerClean(t);
  });

  it("writes no row for a request that times out in the queue, and one for the request it waited behind", async () => {
    t = await startTestCoordinator({
      config: { queueLimit: 5, queueWaitMs: 300 },
      macs: [
        { maxConcurrency: 1, instant: false, timeScale: 1, diskGbs: 1_000, naturalTokens: { min: 100, max: 100 } },
      ],
    });
    const url = `${t.apiBase}/chat/completions`;
    const long = postJson(url, t.apiKey, { ...body, max_tokens: 200 });
    await new Promise((r) => setTimeout(r, 100));
    const waited = await postJson(url, t.apiKey, body);
    assert.equal(waited.status, 429, waited.text);
    assert.equal((await long).status, 200);
    assert.deepEqual(await ledgerRows(t), [{ state: "settled", n: 1 }]);
    await assertLedgerClean(t);
  });

  it("writes no row for the limiter's 429", async () => {
    t = await startTestCoordinator({ rateLimitTiers: { consumer: { requestsPerSec: 0.001, requestsBurst: 2 } } });
    const url = `${t.apiBase}/chat/completions`;
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await postJson(url, t.apiKey, body)).status);
    assert.deepEqual(statuses, [200, 200, 429, 429, 429]);
    assert.deepEqual(await ledgerRows(t), [{ state: "settled", n: 2 }]);
    await assertLedgerClean(t);
  });

  it("writes no row for a 402 (balance below the request's maximum cost)", async () => {
    t = await startTestCoordinator({ creditMicroUsd: 1n });
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, body);
    assert.equal(r.status, 402, r.text);
    assert.deepEqual(await ledgerRows(t), []);
    await assertLedgerClean(t);
  });

  it("writes no row for 4xx refusals (malformed body, unknown model, bad image URL) in any dialect", async () => {
    t = await startTestCoordinator();
    const refusals: [string, unknown, number][] = [
      ["/chat/completions", { model: "gpt-oss-20b", messages: "not a list" }, 400],
      ["/chat/completions", { ...body, model: "no-such-model" }, 404],
      ["/completions", { model: "gpt-oss-20b", prompt: 42 }, 400],
      [
        "/responses",
        {
          model: "gpt-oss-20b",
          input: [
            { role: "user", content: [{ type: "input_image", image_url: "http://169.254.169.254/latest/meta-data/" }] },
          ],
        },
        400,
      ],
      ["/messages", { model: "gpt-oss-20b", messages: [{ role: "user", content: "hi" }] }, 400], // no max_tokens
    ];
    for (const [path, b, status] of refusals) {
      const r = await postJson(`${t.apiBase}${path}`, t.apiKey, b);
      assert.equal(r.status, status, `${path}: ${r.text}`);
    }
    assert.deepEqual(await ledgerRows(t), []);
    // A served request after them is recorded as usual.
    assert.equal((await postJson(`${t.apiBase}/chat/completions`, t.apiKey, body)).status, 200);
    assert.deepEqual(await ledgerRows(t), [{ state: "settled", n: 1 }]);
    await assertLedgerClean(t);
  });
});
