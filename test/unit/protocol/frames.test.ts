/**
 * The protocol edge: every value a provider sends is validated and bounded before it reaches the registry, the
 * router, the logs or the ledger.
 */
import assert from "node:assert/strict";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { HeartbeatSchema, InferenceChunkSchema, InferenceCompleteSchema, InferenceErrorSchema, RegisterSchema } from "../../../gen/coordinator/provider/v1/provider_pb.js";
import { completeFromFrame, deltasFromChunk, errorFromFrame, heartbeatFromFrame, registrationFromFrame } from "../../../src/protocol/frames.js";
import { ProtocolViolation, wireBounds } from "../../../src/protocol/wire-bounds.js";

const key = new Uint8Array(32).fill(1);
const register = (r: MessageInitShape<typeof RegisterSchema> = {}) =>
  create(RegisterSchema, { authToken: "pt-x", serial: "MAC-1", version: "0.7.0", publicKey: key, models: [{ id: "gpt-oss-20b", sizeBytes: 12n }], ...r });

function violation(fn: () => unknown, field: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof ProtocolViolation && field.test(e.field), `expected a violation of ${field}`);
}

describe("frames: Register", () => {
  it("accepts an honest registration", () => {
    const r = registrationFromFrame(register());
    assert.equal(r.serial, "MAC-1");
    assert.deepEqual(r.models.map((m) => m.id), ["gpt-oss-20b"]);
    assert.deepEqual(r.publicKey, key);
  });

  it("refuses serials with NUL, controls, HTML, or past the length bound", () => {
    for (const serial of ["MAC\u00001", "MAC\n1", "<b>MAC</b>", "", " MAC", "x".repeat(wireBounds.maxSerialChars + 1)]) {
      violation(() => registrationFromFrame(register({ serial })), /^serial$/);
    }
    assert.equal(registrationFromFrame(register({ serial: "x".repeat(wireBounds.maxSerialChars) })).serial.length, wireBounds.maxSerialChars);
  });

  it("refuses model ids with NUL, HTML, or 100 KB of text, and duplicated ids", () => {
    for (const id of ["gpt\u0000oss", "<script>alert(1)</script>", "a".repeat(100_000), "x".repeat(wireBounds.maxModelIdChars + 1)]) {
      violation(() => registrationFromFrame(register({ models: [{ id }] })), /^models\[0\]\.id$/);
    }
    violation(() => registrationFromFrame(register({ models: [{ id: "m" }, { id: "m" }] })), /^models\[1\]\.id$/);
    assert.equal(registrationFromFrame(register({ models: [{ id: "mlx-community/gemma-3@4bit" }] })).models[0]!.id, "mlx-community/gemma-3@4bit");
  });

  it("caps the model list and requires a 32-byte Ed25519 public key", () => {
    const models = Array.from({ length: wireBounds.maxModelsPerProvider + 1 }, (_, i) => ({ id: `m${i}` }));
    violation(() => registrationFromFrame(register({ models })), /^models$/);
    assert.equal(registrationFromFrame(register({ models: models.slice(1) })).models.length, wireBounds.maxModelsPerProvider);
    violation(() => registrationFromFrame(register({ publicKey: new Uint8Array(0) })), /^public_key$/);
    violation(() => registrationFromFrame(register({ publicKey: new Uint8Array(33) })), /^public_key$/);
  });

  it("keeps non-finite rates out", () => {
    const r = registrationFromFrame(register({ decodeTps: Number.NaN, prefillTps: Number.POSITIVE_INFINITY }));
    assert.ok(Number.isFinite(r.decodeTps) && Number.isFinite(r.prefillTps));
  });
});

describe("frames: Heartbeat", () => {
  it("caps a 2^64 token budget and refuses NUL model names in slots and warm models", () => {
    const h = heartbeatFromFrame(
      create(HeartbeatSchema, { capacity: { slots: [{ model: "gpt-oss-20b", activeTokenBudgetMax: 2n ** 64n - 1n, kvBytesPerToken: 2n ** 63n }] } }),
    );
    assert.ok(h.slots[0]!.tokenBudgetMax <= 2 ** 40 && Number.isSafeInteger(h.slots[0]!.tokenBudgetMax));
    violation(() => heartbeatFromFrame(create(HeartbeatSchema, { capacity: { slots: [{ model: "bad\u0000" }] } })), /slots\[0\]\.model/);
    violation(() => heartbeatFromFrame(create(HeartbeatSchema, { warmModels: ["bad\u0000"] })), /warm_models\[0\]/);
    violation(() => heartbeatFromFrame(create(HeartbeatSchema, { capacity: { slots: [{ model: "m", maxConcurrency: wireBounds.maxSlotCounter + 1 }] } })), /max_concurrency/);
  });
});

describe("frames: per-request frames", () => {
  it("refuses a usage count no request can reach (3e9 is a valid uint32) without failing the completion", () => {
    const ok = completeFromFrame(create(InferenceCompleteSchema, { usage: { promptTokens: wireBounds.maxUsageTokens, completionTokens: 3 } }));
    assert.equal(ok.usageRefused, undefined);
    assert.equal(ok.usage.promptTokens, wireBounds.maxUsageTokens);
    const bad = completeFromFrame(create(InferenceCompleteSchema, { usage: { promptTokens: 3_000_000_000, completionTokens: 3 } }));
    assert.match(bad.usageRefused ?? "", /usage\.prompt_tokens/);
    assert.deepEqual(bad.usage, { promptTokens: 0, completionTokens: 0, reasoningTokens: 0 });
    const bad2 = completeFromFrame(create(InferenceCompleteSchema, { usage: { completionTokens: wireBounds.maxUsageTokens + 1 } }));
    assert.match(bad2.usageRefused ?? "", /usage\.completion_tokens/);
  });

  it("bounds deltas per chunk and tool-call fields", () => {
    const many = Array.from({ length: wireBounds.maxDeltasPerChunk + 1 }, () => ({ delta: { case: "content" as const, value: "x" } }));
    violation(() => deltasFromChunk(create(InferenceChunkSchema, { deltas: many })), /deltas/);
    assert.equal(deltasFromChunk(create(InferenceChunkSchema, { deltas: many.slice(1) })).length, wireBounds.maxDeltasPerChunk);
    violation(() => deltasFromChunk(create(InferenceChunkSchema, { deltas: [{ delta: { case: "toolCall", value: { index: 256 } } }] })), /tool_call\.index/);
  });

  it("maps an out-of-range error status to 500 and strips control characters from the message", () => {
    const e = errorFromFrame(create(InferenceErrorSchema, { statusCode: 200, message: "boom\u0000\nsecond line" + "x".repeat(10_000) }));
    assert.equal(e.statusCode, 500);
    assert.ok(!/[\u0000-\u001f]/.test(e.message));
    assert.ok(e.message.length <= wireBounds.maxErrorMessageChars + 1);
    assert.equal(errorFromFrame(create(InferenceErrorSchema, { statusCode: 429, message: "busy" })).statusCode, 429);
  });
});
