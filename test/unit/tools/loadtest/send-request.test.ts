import assert from "node:assert/strict";
import { runCell } from "../../../../src/tools/loadtest/run-cell.js";
import { sendChatRequest } from "../../../../src/tools/loadtest/send-request.js";
import { closedPort, startFakeServer, type FakeServer } from "./fake-openai-server.js";

describe("loadtest sendChatRequest and runCell", () => {
  let server: FakeServer;
  before(async () => {
    server = await startFakeServer({
      plan: (mt) => (mt === 1 ? "reset" : mt === 2 ? "bad_request_400" : "ok"),
      chunks: 3,
    });
  });
  after(() => server.close());

  const opts = (maxTokens: number) => ({
    baseUrl: server.baseUrl,
    apiKey: "k",
    model: "fake-model",
    maxTokens,
    prompt: "hi",
    timeoutMs: 2_000,
    now: () => performance.now(),
  });

  it("measures a streamed answer: TTFB, TTFT, latency and usage", async () => {
    const out = await sendChatRequest(opts(64));
    assert.equal(out.failure, null);
    assert.equal(out.status, 200);
    assert.equal(out.completionTokens, 6);
    assert.equal(out.promptTokens, 7);
    assert.ok(out.ttfbMs! <= out.ttftMs! && out.ttftMs! <= out.latencyMs);
  });

  it("reports a stream cut off mid-body as a network failure", async () => {
    const out = await sendChatRequest(opts(1));
    assert.equal(out.failure?.kind, "network");
    assert.equal(out.status, 200);
    assert.equal(out.tokensSource, "counted");
    assert.equal(out.completionTokens, 1);
  });

  it("carries the error body of a 4xx", async () => {
    const out = await sendChatRequest(opts(2));
    assert.deepEqual(out.failure, {
      kind: "http",
      status: 400,
      code: "invalid_request",
      type: "invalid_request_error",
      message: "max_tokens too large",
    });
  });

  it("reports a refused connection as a network failure", async () => {
    const out = await sendChatRequest({ ...opts(64), baseUrl: `http://127.0.0.1:${await closedPort()}/v1` });
    assert.deepEqual(out.failure, { kind: "network", message: "ECONNREFUSED" });
    assert.equal(out.status, null);
  });

  it("stops starting requests when aborted and aborts those in flight", async () => {
    const ac = new AbortController();
    ac.abort();
    const cell = await runCell({
      ...opts(64),
      concurrency: 3,
      stop: { kind: "requests", count: 10 },
      signal: ac.signal,
    });
    assert.equal(cell.requests.length, 0);
  });

  it("keeps at most `concurrency` requests in flight", async () => {
    let inflight = 0;
    let peak = 0;
    const cell = await runCell({
      ...opts(64),
      concurrency: 3,
      stop: { kind: "requests", count: 9 },
      send: async (o) => {
        peak = Math.max(peak, ++inflight);
        await new Promise((r) => setImmediate(r));
        inflight--;
        return {
          startMs: o.now(),
          ttfbMs: 1,
          ttftMs: 1,
          latencyMs: 1,
          status: 200,
          promptTokens: 0,
          completionTokens: 1,
          tokensSource: "usage",
          failure: null,
        };
      },
    });
    assert.equal(peak, 3);
    assert.deepEqual(
      cell.requests.map((r) => r.seq),
      [0, 1, 2, 3, 4, 5, 6, 7, 8],
    );
    assert.deepEqual(new Set(cell.requests.map((r) => r.worker)), new Set([0, 1, 2]));
  });
});
