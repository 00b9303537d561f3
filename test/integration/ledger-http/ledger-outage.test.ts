/**
 * Issue 5 §5 through HTTP: while Postgres is down the coordinator keeps answering from leased credit, and once
 * the lease is spent it sheds with 429 rate_limit_exceeded + Retry-After, never a wall of 503s. When the
 * database returns, the buffered entries land and every request served during the outage is charged once.
 */
import assert from "node:assert/strict";
import { sql } from "kysely";
import { verifyLedger } from "../../../src/ledger/verify-ledger.js";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";
import { setDatabaseReachable } from "../../support/database-reachability.js";
import { postJson, type RawResponse } from "../../support/http.js";

describe("ledger degradation through the HTTP API (Postgres unreachable)", function () {
  this.timeout(30_000);
  let t: TestCoordinator;

  before(async () => {
    // A 2,000 µUSD lease and ~210 µUSD per request (1,000 output tokens at $0.20/M): the lease runs out after a
    // handful of requests, which is what makes the shed reachable in a test.
    t = await startTestCoordinator({
      tier: "service",
      config: { ledgerLeaseMicroUsd: 2_000 },
      macs: [{ naturalTokens: { min: 1_000, max: 1_000 } }],
    });
  });
  after(async () => {
    if (t) await setDatabaseReachable(t.db.url, true);
    await t?.close();
  });

  const ask = () =>
    postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
      model: "gpt-oss-20b",
      max_tokens: 1_000,
      messages: [{ role: "user", content: "hi" }],
    });

  it("serves from the lease while Postgres is down, then sheds with 429 + Retry-After (not 503), and charges everything once it is back", async () => {
    const warm = await ask();
    assert.equal(warm.status, 200, warm.text);
    await t.coordinator.ledger.flush();

    await setDatabaseReachable(t.db.url, false);
    const served: RawResponse[] = [];
    let shed: RawResponse | undefined;
    // The API key stays in the auth cache for 5 s; the loop ends well before that (instant Mac).
    for (let i = 0; i < 40 && !shed; i++) {
      const r = await ask();
      if (r.status === 200) served.push(r);
      else shed = r;
    }
    console.log(
      `      outage: ${served.length} served from the lease, then ${shed?.status} Retry-After ${shed?.headers.get("retry-after")}`,
    );
    assert.ok(served.length >= 3, `served ${served.length} requests from leased credit while Postgres was down`);
    assert.ok(shed, "the lease ran out within 40 requests");
    assert.equal(shed.status, 429, `shed status (body ${shed.text})`);
    const err = (JSON.parse(shed.text) as { error: { code: string; type: string } }).error;
    assert.equal(err.code, "rate_limit_exceeded");
    const retryAfter = Number(shed.headers.get("retry-after"));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After ${shed.headers.get("retry-after")}`);

    await setDatabaseReachable(t.db.url, true);
    await new Promise((r) => setTimeout(r, retryAfter * 1000));
    const after = await ask();
    assert.equal(after.status, 200, `after Retry-After and recovery: ${after.text}`);

    await t.coordinator.ledger.flush();
    assert.deepEqual(await verifyLedger(t.db.db), { ok: true, violations: [], quarantined: [] });
    const ids = [warm, ...served, after].map((r) => r.headers.get("x-request-id")!);
    const { rows } = await sql<{ request_id: string; state: string; debits: bigint }>`
      SELECT r.request_id, r.state, (SELECT count(*) FROM ledger_entries e WHERE e.request_id = r.request_id AND e.kind = 'debit')::int8 AS debits
      FROM ledger_requests r WHERE r.account_id = ${t.accountId}`.execute(t.db.db);
    const byId = new Map(rows.map((r) => [r.request_id, r]));
    for (const id of ids) {
      assert.equal(byId.get(id)?.state, "settled", `${id} settled after the outage`);
      assert.equal(byId.get(id)?.debits, 1n, `${id} debited exactly once`);
    }
    const shedId = shed.headers.get("x-request-id")!;
    assert.notEqual(byId.get(shedId)?.state, "settled", "the shed request is not charged");
  });
});
