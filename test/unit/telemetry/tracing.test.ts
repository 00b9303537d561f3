import assert from "node:assert/strict";
import { trace } from "@opentelemetry/api";
import { CoordinatorMessageSchema } from "../../../gen/coordinator/provider/v1/provider_pb.js";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { RequestTraits } from "../../../src/inference/types.js";
import { inferenceRequestFrame } from "../../../src/protocol/coordinator-frames.js";
import { extractTraceContext, startSpan, traceHeaders, traceLogFields } from "../../../src/telemetry/tracing.js";

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

describe("tracing helpers without an SDK (the API's no-op tracer)", () => {
  before(() => trace.disable());

  it("keeps the caller's trace on a non-recording span, so providers still get its traceparent", () => {
    const span = startSpan("POST /v1/chat/completions", extractTraceContext({ traceparent, tracestate: "dd=s:1" }));
    assert.equal(span.isRecording(), false);
    assert.deepEqual(traceHeaders(span), { traceparent, tracestate: "dd=s:1" });
    assert.deepEqual(traceLogFields(span), {
      trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
      span_id: "00f067aa0ba902b7",
      "dd.trace_id": BigInt("0xa3ce929d0e0e4736").toString(),
      "dd.span_id": BigInt("0x00f067aa0ba902b7").toString(),
    });
  });

  it("adds nothing for a request without (or with a malformed) traceparent", () => {
    for (const headers of [
      {},
      { traceparent: "00-zz-00f067aa0ba902b7-01" },
      { traceparent: `00-${"0".repeat(32)}-00f067aa0ba902b7-01` },
    ]) {
      const span = startSpan("x", extractTraceContext(headers));
      assert.deepEqual(traceHeaders(span), {});
      assert.deepEqual(traceLogFields(span), {});
    }
  });

  it("carries the trace context in InferenceRequest.trace_context over the wire", () => {
    const traits: RequestTraits = {
      maxTokens: 8,
      estimatedPromptTokens: 3,
      hasTools: false,
      requiresVision: false,
      stream: true,
    };
    const frame = fromBinary(
      CoordinatorMessageSchema,
      toBinary(
        CoordinatorMessageSchema,
        inferenceRequestFrame("req_1", "m", new Uint8Array(), traits, { traceparent }),
      ),
    );
    assert.equal(frame.msg.case, "inferenceRequest");
    assert.deepEqual(frame.msg.value?.traceContext, { traceparent });
    const untraced = inferenceRequestFrame("req_2", "m", new Uint8Array(), traits);
    assert.deepEqual(untraced.msg.case === "inferenceRequest" ? untraced.msg.value.traceContext : undefined, {});
  });
});
