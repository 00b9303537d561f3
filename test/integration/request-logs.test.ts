/**
 * Logs an operator can search (issue 15, item 5): pino JSON lines with a timestamp Datadog parses, the request
 * and trace ids on every line logged inside a request (also on lines written from a provider's stream events),
 * one "request finished" line per request, and the reason of a failover or a refusal.
 */
import assert from "node:assert/strict";
import { createLogger } from "../../src/util/logger.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { eventually, postJson } from "../support/http.js";

type Line = Record<string, unknown>;

const traceId = "0af7651916cd43dd8448eb211c80319c";

describe("logs: one line per finished request, ids on every line inside it", function () {
  this.timeout(30_000);
  let t: TestCoordinator | undefined;
  afterEach(async () => t?.close());

  const capture = () => {
    const lines: Line[] = [];
    return { lines, logger: createLogger("debug", (l) => lines.push(JSON.parse(l) as Line)) };
  };
  const chat = {
    model: "gpt-oss-20b",
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: 24,
    messages: [{ role: "user", content: "Say hello" }],
  };

  it("writes the finished line with route, model, provider, status, tokens, TTFT, duration and outcome, and the failover reason with the request and trace ids", async () => {
    const { lines, logger } = capture();
    t = await startTestCoordinator({
      logger,
      macs: [{ failures: { script: [{ kind: "error_before_content", afterRole: true }] } }, { warmModels: [] }],
    });
    const [bad, good] = t.macs;
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat, {
      headers: { traceparent: `00-${traceId}-b7ad6b7169203331-01` },
    });
    assert.equal(r.status, 200);
    const requestId = r.headers.get("x-request-id")!;
    await eventually(() => lines.some((l) => l.msg === "request finished"), 5_000, "the finished line");

    for (const l of lines) {
      assert.equal(typeof l.level, "string");
      assert.ok(!Number.isNaN(Date.parse(String(l.timestamp))), `an ISO timestamp: ${JSON.stringify(l)}`);
    }
    const finished = lines.filter((l) => l.msg === "request finished");
    assert.equal(finished.length, 1);
    const f = finished[0]!;
    assert.equal(f.level, "info");
    assert.equal(f.request_id, requestId);
    assert.equal(f.trace_id, traceId);
    assert.match(String(f.span_id), /^[0-9a-f]{16}$/);
    assert.equal(f["dd.trace_id"], BigInt(`0x${traceId.slice(16)}`).toString());
    assert.equal(f.route, "/v1/chat/completions");
    assert.equal(f.model, "gpt-oss-20b");
    assert.equal(f.provider_id, good!.providerId);
    assert.equal(f.status, 200);
    assert.equal(f.outcome, "completed");
    assert.equal(f.attempts, 2);
    assert.ok((f.prompt_tokens as number) > 0 && (f.completion_tokens as number) > 0, JSON.stringify(f));
    assert.ok(
      typeof f.ttft_ms === "number" &&
        typeof f.duration_ms === "number" &&
        (f.ttft_ms as number) <= (f.duration_ms as number),
      JSON.stringify(f),
    );

    // Written from the failing Mac's stream event, yet inside the request: its ids, the provider and the reason.
    const failover = lines.find((l) => l.msg === "failing over");
    assert.ok(failover, lines.map((l) => l.msg).join(" | "));
    assert.equal(failover.level, "info");
    assert.equal(failover.request_id, requestId);
    assert.equal(failover.trace_id, traceId);
    assert.equal(failover.provider_id, bad!.providerId);
    assert.equal(failover.reason, "provider_error");
    // Every line logged while the request ran carries its ids.
    for (const l of lines.filter((x) => x.request_id === requestId))
      assert.equal(l.trace_id, traceId, JSON.stringify(l));
  });

  it("writes a refused request's line with its status, outcome and reason", async () => {
    const { lines, logger } = capture();
    t = await startTestCoordinator({ logger });
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, { ...chat, model: "no-such-model" });
    assert.equal(r.status, 404);
    await eventually(() => lines.some((l) => l.msg === "request finished"), 5_000, "the finished line");
    const f = lines.find((l) => l.msg === "request finished")!;
    assert.equal(f.request_id, r.headers.get("x-request-id"));
    assert.match(String(f.trace_id ?? ""), /^$|^[0-9a-f]{32}$/);
    assert.equal(f.status, 404);
    assert.equal(f.outcome, "refused");
    assert.equal(f.error_code, "model_not_found");
    assert.equal(f.reason, "model_not_found");
    assert.equal(f.provider_id, undefined);
  });
});
