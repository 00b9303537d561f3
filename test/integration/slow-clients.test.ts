/**
 * The HTTP_* timeouts on a real coordinator (issue 13: slow or idle clients were never cut): a slow client is
 * cut, while an answer that takes longer than every timeout (a long wait for the first token, a long stream)
 * is still delivered whole. ConsumerServer's own test covers each timeout in detail.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { doneCount, postJson } from "../support/http.js";

describe("slow clients", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  const timeouts = {
    httpHeadersTimeoutMs: 400,
    httpRequestTimeoutMs: 1_200,
    httpKeepAliveTimeoutMs: 300,
    httpIdleSocketTimeoutMs: 900,
  };
  before(async () => {
    t = await startTestCoordinator({
      // Each of the first two requests waits 2.5 s for its first token: past every timeout above.
      macs: [
        {
          failures: {
            script: [
              { kind: "slow_first_token", delayMs: 2_500 },
              { kind: "slow_first_token", delayMs: 2_500 },
            ],
          },
        },
      ],
      config: timeouts,
    });
  });
  after(async () => t?.close());

  it("cuts a client that never finishes its headers (HTTP_HEADERS_TIMEOUT_MS) with 408", async () => {
    const s = connect(t.coordinator.httpPort, "127.0.0.1");
    s.write("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ");
    const started = performance.now();
    let data = "";
    s.on("data", (d: Buffer) => (data += d.toString("latin1")));
    await new Promise((r) => s.once("close", r));
    assert.match(data, /^HTTP\/1\.1 408/);
    assert.ok(performance.now() - started < timeouts.httpHeadersTimeoutMs + 3_000);
  });

  it("delivers a stream whose first token comes after the request and idle timeouts, whole", async () => {
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
      model: "gpt-oss-20b",
      max_tokens: 16,
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(r.status, 200);
    assert.ok(r.elapsedMs > 2_000, `the answer really was slow (${r.elapsedMs} ms)`);
    assert.equal(doneCount(r.text), 1, r.text);
  });

  it("delivers a non-streamed answer that takes longer than every timeout", async () => {
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
      model: "gpt-oss-20b",
      max_tokens: 16,
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(r.status, 200, r.text);
    assert.ok(r.elapsedMs > 2_000);
    assert.ok((JSON.parse(r.text) as { choices: unknown[] }).choices.length === 1);
  });
});
