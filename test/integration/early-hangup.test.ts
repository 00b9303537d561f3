/**
 * A caller that hangs up while its rate and credit are being admitted (before dispatch) must not have its request
 * run to max_tokens and billed: the close listener used to be attached only at dispatch, after the awaits where
 * a first request's credit lease is drawn from PostgreSQL (found by review: 600 tokens streamed for 14 s, then
 * settled, for a client long gone). The test holds the account's row lock so the hang-up lands in that await.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { sql } from "kysely";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a caller that hangs up before dispatch", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  before(async () => {
    // One Mac streaming 600 tokens in real time (~70 tok/s: about 9 s a request).
    t = await startTestCoordinator({ macs: [{ instant: false, naturalTokens: { min: 600, max: 600 } }] });
  });
  after(async () => t?.close());

  it("is not run to max_tokens nor billed for it: nothing stays reserved and nothing settles at 600 tokens", async () => {
    const body = JSON.stringify({
      model: "gpt-oss-20b",
      max_tokens: 600,
      stream: true,
      messages: [{ role: "user", content: "tell me a long story" }],
    });
    await t.db.db.transaction().execute(async (trx) => {
      // The first request of the account draws its credit lease under this lock (lease-sql.ts drawLease).
      await sql`SELECT 1 FROM accounts WHERE id = ${t.accountId} FOR UPDATE`.execute(trx);
      const s = connect({ port: t.coordinator.httpPort, host: "127.0.0.1" });
      await new Promise((r) => s.once("connect", r));
      s.write(
        `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${t.apiKey}\r\n` +
          `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      await sleep(500); // the request waits for the lease
      s.destroy();
      await sleep(200);
    });
    // Running to the end would hold the reservation ~9 s; a cancelled request holds nothing after a moment.
    await sleep(2_500);
    await t.coordinator.ledger.flush();
    const rows = await t.db.db
      .selectFrom("ledger_requests")
      .select(["state", "completion_tokens"])
      .where("account_id", "=", t.accountId)
      .execute();
    for (const r of rows) {
      assert.notEqual(r.state, "reserved", "still running for a caller that left");
      assert.ok(Number(r.completion_tokens) < 300, `${r.completion_tokens} completion tokens billed`);
    }
    const inflight = t.coordinator.registry.view().providers.reduce((n, p) => n + p.inflight.size, 0);
    assert.equal(inflight, 0, "nothing in flight");
  });
});
