import assert from "node:assert/strict";
import {
  estimatePromptTokens,
  IMAGE_TOKENS_HIGH,
  IMAGE_TOKENS_LOW,
  IMAGE_UPPER_BOUND_TOKENS,
  promptBytesUpperBound,
  requiresVision,
  utf8ByteLength,
} from "../../../../src/dialects/shared/prompt-estimate.js";

const img = (detail?: string) => ({
  type: "image_url",
  image_url: detail ? { url: "data:image/png;base64,AA", detail } : { url: "https://x/y.png" },
});

describe("prompt estimates", () => {
  it("counts about four characters per token plus a per-message overhead", () => {
    assert.equal(estimatePromptTokens([{ role: "user", content: "x".repeat(400) }]), 100 + 4);
  });

  it("charges a fixed cost per image by detail and does not count data URL bytes as text", () => {
    const msgs = [{ role: "user", content: [{ type: "text", text: "abcd" }, img("low"), img()] }];
    assert.equal(estimatePromptTokens(msgs), 1 + 4 + IMAGE_TOKENS_LOW + IMAGE_TOKENS_HIGH);
    assert.equal(requiresVision(msgs), true);
    assert.equal(requiresVision([{ role: "user", content: "no images" }]), false);
  });

  it("counts tool schemas and prior tool calls", () => {
    const tools = [{ type: "function", function: { name: "f", parameters: { type: "object" } } }];
    const base = estimatePromptTokens([{ role: "user", content: "hi" }]);
    assert.ok(estimatePromptTokens([{ role: "user", content: "hi" }], tools) > base);
    const withCall = [
      { role: "user", content: "hi" },
      { role: "assistant", content: null, tool_calls: [{ id: "c", function: { name: "f", arguments: "{}" } }] },
    ];
    assert.ok(estimatePromptTokens(withCall) > base + 4);
  });

  it("bounds prompt tokens from above by UTF-8 bytes, message overhead and a per-image allowance", () => {
    const text = "héllo 世界 🙂";
    assert.equal(utf8ByteLength(text), new TextEncoder().encode(text).length);
    const msgs = [{ role: "user", content: [{ type: "text", text }, img()] }];
    assert.equal(promptBytesUpperBound(msgs), utf8ByteLength(text) + 16 + IMAGE_UPPER_BOUND_TOKENS);
    assert.ok(promptBytesUpperBound(msgs) >= estimatePromptTokens(msgs));
  });
});
