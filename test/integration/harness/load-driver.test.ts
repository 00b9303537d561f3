/**
 * The scale suite's load driver against a real coordinator (and a dead port, and a server that cuts streams):
 * each outcome class comes from the situation it names, and the record says where the request ran.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { freePorts } from "../../support/coordinator-process.js";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";
import { countOutcomes, quantile, startLoad, summarizeLoad } from "../../support/load-driver.js";

describe("test support: streaming load driver", function () {
  this.timeout(60_000);
  let t: TestCoordinator;
  let deadUrl: string;
  before(async () => {
    t = await startTestCoordinator({ macs: [{ naturalTokens: { min: 20, max: 20 }, maxConcurrency: 16 }] });
    deadUrl = `http://127.0.0.1:${(await freePorts(1))[0]}`;
  });
  after(async () => {
    await t?.close();
  });

  it("pins consumer k to URL k mod n and records status, request id, first token and tokens", async () => {
    const records = await startLoad({
      baseUrls: [t.baseUrl, t.baseUrl],
      apiKey: t.apiKey,
      concurrency: 4,
      model: "gpt-oss-20b",
      requests: 12,
    }).done();
    assert.equal(records.length, 12);
    assert.deepEqual(countOutcomes(records), {
      ok: 12,
      "ok-after-retry": 0,
      error: 0,
      "error-after-content": 0,
      "connection-lost": 0,
    });
    for (const r of records) {
      assert.equal(r.node, r.consumer % 2);
      assert.equal(r.status, 200);
      assert.equal(r.tries, 1);
      assert.match(r.requestId ?? "", /^req_[0-9a-f]{32}$/);
      assert.equal(r.completionTokens, 20);
      assert.ok(r.firstTokenMs !== undefined && r.firstTokenMs <= r.endMs - r.startMs + 1);
    }
    assert.equal(new Set(records.map((r) => r.requestId)).size, 12);
    assert.ok(
      quantile(
        records.map((r) => r.firstTokenMs),
        0.5,
      )! > 0,
    );
    assert.match(summarizeLoad(records, 2), /^12 requests: ok 12, .* per node \d+\/\d+$/);
  });

  it("a consumer of a dead coordinator succeeds after the SDK's retry moves to the next URL", async () => {
    const records = await startLoad({
      baseUrls: [t.baseUrl, deadUrl],
      apiKey: t.apiKey,
      concurrency: 2,
      model: "gpt-oss-20b",
      requests: 4,
    }).done();
    const fromDead = records.filter((r) => r.firstNode === 1);
    assert.ok(fromDead.length >= 1);
    for (const r of fromDead) {
      assert.equal(r.outcome, "ok-after-retry", r.error);
      assert.equal(r.node, 0);
      assert.equal(r.tries, 2);
    }
    for (const r of records.filter((x) => x.firstNode === 0)) assert.equal(r.outcome, "ok");
  });

  it("without rotation the retries hit the dead coordinator again: connection-lost after every try", async () => {
    const [r] = await startLoad({
      baseUrls: [deadUrl],
      apiKey: t.apiKey,
      concurrency: 1,
      model: "gpt-oss-20b",
      requests: 1,
      rotateOnRetry: false,
      maxRetries: 1,
    }).done();
    assert.equal(r!.outcome, "connection-lost");
    assert.equal(r!.tries, 2);
    assert.equal(r!.status, undefined);
    assert.equal(r!.requestId, undefined);
  });

  it("classifies an HTTP error before content as error, with its status and request id", async () => {
    const [r] = await startLoad({
      baseUrls: [t.baseUrl],
      apiKey: t.apiKey,
      concurrency: 1,
      model: "no-such-model",
      requests: 1,
    }).done();
    assert.equal(r!.outcome, "error");
    assert.equal(r!.status, 404);
    assert.match(r!.requestId ?? "", /^req_/);
  });

  it("classifies an in-band error after content as error-after-content", async () => {
    t.macs[0]!.script({ kind: "error_after_content", afterTokens: 4 });
    const [r] = await startLoad({
      baseUrls: [t.baseUrl],
      apiKey: t.apiKey,
      concurrency: 1,
      model: "gpt-oss-20b",
      requests: 1,
    }).done();
    assert.equal(r!.outcome, "error-after-content", r!.error);
    assert.ok(r!.contentChunks > 0);
  });

  it("classifies a stream cut mid-way as connection-lost, not retried", async () => {
    // A server that starts a stream, sends one content chunk and resets the socket.
    const server: Server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "text/event-stream", "x-request-id": "req_cut" });
      res.write(
        `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", created: 0, model: "m", choices: [{ index: 0, delta: { content: "hi" }, finish_reason: null }] })}\n\n`,
      );
      setTimeout(() => res.socket?.destroy(), 50);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const [r] = await startLoad({
        baseUrls: [`http://127.0.0.1:${(server.address() as { port: number }).port}`],
        apiKey: "k",
        concurrency: 1,
        model: "m",
        requests: 1,
      }).done();
      assert.equal(r!.outcome, "connection-lost", r!.error);
      assert.equal(r!.contentChunks, 1);
      assert.equal(r!.tries, 1);
      assert.equal(r!.requestId, "req_cut");
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
