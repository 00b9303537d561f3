import assert from "node:assert/strict";
import {
  bytesOf,
  clusterSubjects,
  decodeAnswer,
  decodeBeat,
  decodeCancel,
  decodeDispatch,
  decodeEnd,
  decodeLoad,
  decodeRelay,
  encode,
  encodeRelay,
  encodeRelayBatches,
  isSubjectToken,
  textOf,
} from "../../../src/cluster/cluster-messages.js";

const json = (v: unknown) => bytesOf(JSON.stringify(v));

describe("cluster messages", () => {
  it("names every subject under the prefix", () => {
    const s = clusterSubjects("fleet");
    assert.equal(s.nodes, "fleet.nodes");
    assert.equal(s.dispatch("n1"), "fleet.node.n1.dispatch");
    assert.equal(s.events("n1"), "fleet.node.n1.events");
    assert.equal(s.cancel("n1"), "fleet.node.n1.cancel");
    assert.equal(s.load("n1"), "fleet.node.n1.load");
    assert.equal(s.end("n1"), "fleet.node.n1.end");
  });

  const tokens: [string, boolean][] = [
    ["a", true],
    ["node_1-B", true],
    ["x".repeat(64), true],
    ["x".repeat(65), false],
    ["", false],
    ["a.b", false],
    ["*", false],
    [">", false],
    ["a b", false],
    ["nodé", false],
  ];
  for (const [s, ok] of tokens)
    it(`isSubjectToken(${JSON.stringify(s.length > 10 ? `${s.slice(0, 3)}…(${s.length})` : s)}) is ${ok}`, () => {
      assert.equal(isSubjectToken(s), ok);
    });

  it("refuses a prefix that is not a subject token", () => {
    for (const p of ["", "a.b", "fleet.*", "x".repeat(65)]) assert.throws(() => clusterSubjects(p), /cluster prefix/);
  });

  const traits = { maxTokens: 100, estimatedPromptTokens: 10, hasTools: false, requiresVision: false, stream: true };
  const dispatch = {
    requestId: "r1",
    providerId: "p1",
    model: "m",
    body: "{}",
    traits,
    shape: "base",
    from: "n2",
    notAfterMs: 123,
  };

  // Each decoder: valid shape, then malformed JSON, non-objects and one object per missing or mistyped field.
  const decoders: {
    name: string;
    decode: (d: Uint8Array) => unknown;
    valid: Record<string, unknown>;
    expected?: unknown;
    required: string[];
  }[] = [
    { name: "decodeBeat", decode: decodeBeat, valid: { node: "n1", providers: 3 }, required: ["node", "providers"] },
    {
      name: "decodeDispatch",
      decode: decodeDispatch,
      valid: dispatch,
      required: ["requestId", "providerId", "model", "body", "traits", "shape", "from", "notAfterMs"],
    },
    {
      name: "decodeCancel",
      decode: decodeCancel,
      valid: { requestId: "r1", providerId: "p1", reason: "gone" },
      required: ["requestId", "providerId", "reason"],
    },
    {
      name: "decodeLoad",
      decode: decodeLoad,
      valid: { providerId: "p1", model: "m" },
      required: ["providerId", "model"],
    },
    {
      name: "decodeEnd",
      decode: decodeEnd,
      valid: { providerId: "p1", reason: "fenced" },
      required: ["providerId", "reason"],
    },
    { name: "decodeAnswer", decode: decodeAnswer, valid: { ok: true }, required: ["ok"] },
    {
      name: "decodeRelay",
      decode: decodeRelay,
      valid: { frames: [{ requestId: "r1", providerId: "p1", event: { kind: "accepted" } }] },
      expected: [{ requestId: "r1", providerId: "p1", event: { kind: "accepted" } }],
      required: ["frames"],
    },
  ];
  const notObjects = ["{", "", "null", "42", '"text"', "[]", '[{"node":"n1","providers":3}]', "true"];
  for (const d of decoders) {
    it(`${d.name} accepts the valid shape`, () => {
      assert.deepEqual(d.decode(json(d.valid)), d.expected ?? d.valid);
    });
    it(`${d.name} rejects malformed JSON and non-objects`, () => {
      for (const text of notObjects) assert.equal(d.decode(bytesOf(text)), undefined, text);
      assert.equal(d.decode(new Uint8Array([0xff, 0xfe, 0x00])), undefined, "not UTF-8 JSON");
    });
    it(`${d.name} rejects a missing or mistyped field`, () => {
      for (const f of d.required) {
        const { [f]: _gone, ...missing } = d.valid;
        assert.equal(d.decode(json(missing)), undefined, `missing ${f}`);
        assert.equal(d.decode(json({ ...d.valid, [f]: f === "traits" ? null : {} })), undefined, `mistyped ${f}`);
      }
    });
  }

  it("decodeDispatch rejects traits that are not an object", () => {
    assert.equal(decodeDispatch(json({ ...dispatch, traits: "x" })), undefined);
  });

  // The owner counts the forwarded request from its traits: a missing number would put NaN in its accounting.
  it("decodeDispatch rejects traits with a missing or mistyped field", () => {
    for (const f of Object.keys(traits)) {
      const { [f as keyof typeof traits]: _gone, ...missing } = traits;
      assert.equal(decodeDispatch(json({ ...dispatch, traits: missing })), undefined, `missing traits.${f}`);
      assert.equal(decodeDispatch(json({ ...dispatch, traits: { ...traits, [f]: "1" } })), undefined, `mistyped ${f}`);
    }
  });

  it("decodeDispatch takes sentAtMs as optional (older nodes send none) but never mistyped", () => {
    assert.equal(decodeDispatch(json({ ...dispatch, sentAtMs: 100 }))?.sentAtMs, 100);
    for (const sentAtMs of ["100", null, {}, true])
      assert.equal(decodeDispatch(json({ ...dispatch, sentAtMs })), undefined, JSON.stringify(sentAtMs));
  });

  it("decodeDispatch accepts the three request shapes and nothing else", () => {
    for (const shape of ["base", "tools", "vision"]) assert.ok(decodeDispatch(json({ ...dispatch, shape })), shape);
    for (const shape of ["", "other", "BASE"]) assert.equal(decodeDispatch(json({ ...dispatch, shape })), undefined);
  });

  it("decodeDispatch rejects optional fields of the wrong type", () => {
    for (const extra of [
      { callerAccountId: 1 },
      { pinnedAccountId: null },
      { traceContext: "00-x" },
      { traceContext: { traceparent: 1 } },
    ])
      assert.equal(decodeDispatch(json({ ...dispatch, ...extra })), undefined, JSON.stringify(extra));
    const full = { ...dispatch, callerAccountId: "a", pinnedAccountId: "b", traceContext: { traceparent: "00-x" } };
    assert.deepEqual(decodeDispatch(json(full)), full);
  });

  it("decodeAnswer gives a refusal a reason, a default one when absent", () => {
    assert.deepEqual(decodeAnswer(json({ ok: false, reason: "expired" })), { ok: false, reason: "expired" });
    assert.deepEqual(decodeAnswer(json({ ok: false })), { ok: false, reason: "refused" });
    assert.deepEqual(decodeAnswer(json({ ok: false, reason: 7 })), { ok: false, reason: "refused" });
    assert.deepEqual(decodeAnswer(json({ ok: true, reason: "ignored" })), { ok: true });
    assert.deepEqual(decodeAnswer(json({ ok: false, reason: "loading", snapshot: { v: 1 } })), {
      ok: false,
      reason: "loading",
      snapshot: { v: 1 },
    });
    assert.deepEqual(decodeAnswer(json({ ok: true, snapshot: { v: 1 } })), { ok: true }, "only a refusal carries one");
  });

  it("decodeRelay keeps the well-formed frames and drops the others", () => {
    const good = { requestId: "r1", providerId: "p1" };
    const frames = decodeRelay(json({ frames: [good, null, 3, "x", { requestId: "r2" }, { providerId: "p1" }] }));
    assert.deepEqual(frames, [good]);
  });

  it("decodeRelay turns an event of unknown shape into `disconnected` for its request, so the run never throws on it", () => {
    const bad = [
      { kind: "chunk" },
      { kind: "chunk", deltas: [{ kind: "content" }] },
      { kind: "chunk", deltas: [null] },
      { kind: "complete", finishReason: "stop" },
      { kind: "complete", finishReason: "stop", usage: { promptTokens: 1, completionTokens: "2", reasoningTokens: 0 } },
      { kind: "error", message: "x" },
      { kind: "disconnected" },
      { kind: "teleport" },
      "chunk",
    ];
    const frames = decodeRelay(
      json({ frames: bad.map((event, i) => ({ requestId: `r${i}`, providerId: "p1", event })) }),
    );
    assert.equal(frames?.length, bad.length);
    for (const f of frames ?? []) assert.deepEqual(f.event, { kind: "disconnected", message: "malformed relay frame" });
    const good = [
      { kind: "accepted" },
      {
        kind: "chunk",
        deltas: [
          { kind: "role", role: "assistant" },
          { kind: "content", text: "a" },
          { kind: "reasoning", text: "b" },
          { kind: "tool_call", index: 0, id: "c", name: "f", arguments: "{}" },
        ],
      },
      { kind: "complete", finishReason: "stop", usage: { promptTokens: 1, completionTokens: 2, reasoningTokens: 0 } },
      {
        kind: "complete",
        finishReason: "length",
        usage: { promptTokens: 0, completionTokens: 0, reasoningTokens: 0 },
        usageRefused: "completion_tokens over 16777216",
      },
      {
        kind: "chunk",
        deltas: [
          { kind: "tool_call", index: 3 },
          { kind: "tool_call", index: 3, arguments: "{}" },
        ],
      },
      { kind: "chunk", deltas: [] },
      { kind: "error", statusCode: 500, message: "x", reason: "provider_error" },
      { kind: "refused", message: "full" },
    ];
    const kept = decodeRelay(json({ frames: good.map((event) => ({ requestId: "r", providerId: "p1", event })) }));
    assert.deepEqual(
      kept?.map((f) => f.event),
      good,
    );
  });

  it("encodeRelayBatches keeps every message at or under the limit, frames in order, a lone larger frame alone", () => {
    const frame = (i: number, n = 100) => ({
      requestId: `r${String(i).padStart(2, "0")}`, // same size each
      providerId: "p1",
      event: { kind: "chunk" as const, deltas: [{ kind: "content" as const, text: "é".repeat(n) }] },
    });
    const frames = Array.from({ length: 50 }, (_, i) => frame(i));
    const one = encodeRelay([frames[0]!]).length;
    const limit = encodeRelay(frames.slice(0, 10)).length; // exactly ten frames fit
    const batches = encodeRelayBatches(frames, limit);
    assert.equal(batches.length, 5);
    for (const b of batches) assert.ok(b.length <= limit);
    assert.deepEqual(
      batches.flatMap((b) => decodeRelay(b) ?? []),
      frames,
    );
    assert.equal(encodeRelayBatches(frames, limit - 1).length, 6, "one byte less: nine frames a message");
    const huge = encodeRelayBatches([frame(0), frame(1, 10_000), frame(2)], one + 10);
    assert.deepEqual(
      huge.map((b) => decodeRelay(b)?.map((f) => f.requestId)),
      [["r00"], ["r01"], ["r02"]],
    );
    assert.deepEqual(encodeRelayBatches([]), []);
  });

  it("decodeLoad refuses a model that is not a model id", () => {
    assert.deepEqual(decodeLoad(json({ providerId: "p1", model: "gpt-oss-20b" })), {
      providerId: "p1",
      model: "gpt-oss-20b",
    });
    for (const model of ["", "a b", "x".repeat(129), "\u0000"])
      assert.equal(decodeLoad(json({ providerId: "p1", model })), undefined);
  });

  it("round-trips relay frames and text", () => {
    const frames = [
      { requestId: "r1", providerId: "p1", event: { kind: "chunk" as const, deltas: [] } },
      { requestId: "r2", providerId: "p2" },
    ];
    assert.deepEqual(decodeRelay(encodeRelay(frames)), frames);
    assert.equal(textOf(encode({ a: "é" })), '{"a":"é"}');
  });
});
