/**
 * Traces across a request (issue 15, item 1): with an in-memory exporter registered, a request that fails over
 * once is one trace, continuing the caller's `traceparent`, with both dispatch attempts in it, and each
 * simulated Mac receives its attempt's trace context in the InferenceRequest.
 */
import assert from "node:assert/strict";
import { SpanStatusCode, trace } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from "@opentelemetry/sdk-trace-base";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { doneCount, eventually, postJson } from "../support/http.js";

const callerTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
const callerSpanId = "00f067aa0ba902b7";

describe("traces: one trace per consumer request", function () {
  this.timeout(30_000);
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let t: TestCoordinator | undefined;

  before(() => {
    trace.disable(); // a provider another test registered
    assert.ok(trace.setGlobalTracerProvider(provider));
  });
  after(async () => {
    trace.disable();
    await provider.shutdown();
  });
  beforeEach(() => exporter.reset());
  afterEach(async () => t?.close());

  const chat = {
    model: "gpt-oss-20b",
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: 24,
    messages: [{ role: "user", content: "Say hello" }],
  };
  const attr = (s: ReadableSpan, k: string) => s.attributes[k];

  it("puts both attempts of a request that failed over once under the caller's trace, and sends each Mac its attempt's traceparent", async () => {
    t = await startTestCoordinator({
      macs: [{ failures: { script: [{ kind: "error_before_content", afterRole: true }] } }, { warmModels: [] }],
    });
    const [bad, good] = t.macs;
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat, {
      headers: { traceparent: `00-${callerTraceId}-${callerSpanId}-01` },
    });
    assert.equal(r.status, 200);
    assert.equal(doneCount(r.text), 1);
    const requestId = r.headers.get("x-request-id")!;

    await eventually(
      () => exporter.getFinishedSpans().some((s) => s.name === "POST /v1/chat/completions"),
      5_000,
      "the request span ended",
    );
    const spans = exporter.getFinishedSpans();
    assert.ok(
      spans.every((s) => s.spanContext().traceId === callerTraceId),
      `one trace, the caller's: ${spans.map((s) => `${s.name}:${s.spanContext().traceId}`).join(", ")}`,
    );
    const root = spans.find((s) => s.name === "POST /v1/chat/completions")!;
    assert.equal(root.parentSpanContext?.spanId, callerSpanId, "the request span is a child of the caller's span");
    assert.equal(attr(root, "coordinator.request_id"), requestId);
    assert.equal(attr(root, "gen_ai.request.model"), "gpt-oss-20b");
    assert.equal(attr(root, "coordinator.provider.id"), good!.providerId);
    assert.ok((attr(root, "gen_ai.usage.output_tokens") as number) > 0);
    const finish = attr(root, "gen_ai.response.finish_reasons") as string[];
    assert.ok(finish.length === 1 && ["stop", "length"].includes(finish[0]!), String(finish));
    assert.ok(root.events.some((e) => e.name === "first_token"));
    assert.equal(root.status.code, SpanStatusCode.UNSET);

    const childrenOfRoot = spans
      .filter((s) => s.parentSpanContext?.spanId === root.spanContext().spanId)
      .map((s) => s.name);
    for (const name of ["auth", "rate_limit", "reserve", "settle"])
      assert.ok(childrenOfRoot.includes(name), `a ${name} span (${childrenOfRoot.join(", ")})`);
    const routes = spans.filter((s) => s.name === "route");
    assert.deepEqual(
      routes.map((s) => attr(s, "coordinator.routing.phase")),
      ["preflight", "dispatch", "failover"],
    );
    assert.deepEqual(
      routes.slice(1).map((s) => attr(s, "coordinator.provider.id")),
      [bad!.providerId, good!.providerId],
    );

    const attempts = spans
      .filter((s) => s.name === "chat gpt-oss-20b")
      .sort((a, b) => (attr(a, "coordinator.attempt") as number) - (attr(b, "coordinator.attempt") as number));
    assert.equal(attempts.length, 2, "both attempts");
    const [first, second] = attempts as [ReadableSpan, ReadableSpan];
    assert.ok(attempts.every((s) => s.parentSpanContext?.spanId === root.spanContext().spanId));
    assert.equal(attr(first, "coordinator.provider.id"), bad!.providerId);
    assert.equal(attr(first, "coordinator.attempt.outcome"), "failed");
    assert.equal(attr(first, "coordinator.attempt.reason"), "provider_error");
    assert.equal(first.status.code, SpanStatusCode.ERROR);
    assert.equal(attr(second, "coordinator.provider.id"), good!.providerId);
    assert.equal(attr(second, "coordinator.dispatch.reason"), "failover");
    assert.equal(attr(second, "coordinator.attempt.outcome"), "success");
    assert.ok(second.events.some((e) => e.name === "first_token"));
    assert.ok((attr(second, "gen_ai.usage.input_tokens") as number) > 0);

    // Each Mac got the traceparent of its own attempt span, in the caller's trace.
    assert.deepEqual(bad!.traceContextsReceived.get(requestId), {
      traceparent: `00-${callerTraceId}-${first.spanContext().spanId}-01`,
    });
    assert.deepEqual(good!.traceContextsReceived.get(requestId), {
      traceparent: `00-${callerTraceId}-${second.spanContext().spanId}-01`,
    });
  });

  it("starts a new trace without a traceparent and marks a refused request's span with its error type", async () => {
    t = await startTestCoordinator();
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, { ...chat, model: "no-such-model" });
    assert.equal(r.status, 404);
    await eventually(
      () => exporter.getFinishedSpans().some((s) => s.name === "POST /v1/chat/completions"),
      5_000,
      "the request span ended",
    );
    const root = exporter.getFinishedSpans().find((s) => s.name === "POST /v1/chat/completions")!;
    assert.notEqual(root.spanContext().traceId, callerTraceId);
    assert.equal(root.parentSpanContext, undefined);
    assert.equal(attr(root, "http.response.status_code"), 404);
    assert.equal(attr(root, "error.type"), "model_not_found");
  });
});
