import assert from "node:assert/strict";
import {
  estimatePromptTokens,
  IMAGE_TOKENS_HIGH,
  IMAGE_TOKENS_LOW,
  IMAGE_UPPER_BOUND_TOKENS,
  promptBytesUpperBound,
  REQUEST_OVERHEAD_UPPER,
  requiresVision,
  utf8ByteLength,
} from "../../../../src/dialects/shared/prompt-estimate.js";
import { countPromptTokens } from "../../../../src/usage/prompt-tokens.js";
import { tokenizerFamilies } from "../../../../src/usage/tokenizer-family.js";

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
    assert.equal(
      promptBytesUpperBound(msgs),
      utf8ByteLength(text) + 16 + IMAGE_UPPER_BOUND_TOKENS + REQUEST_OVERHEAD_UPPER,
    );
    assert.ok(promptBytesUpperBound(msgs) >= estimatePromptTokens(msgs));
  });
});

describe("promptBytesUpperBound against the coordinator's own prompt count", () => {
  // A seeded generator: the same adversarial texts every run.
  let seed = 7;
  const rand = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const texts: Record<string, (n: number) => string> = {
    "dense CJK": (n) =>
      Array.from({ length: n }, () => String.fromCodePoint(0x4e00 + Math.floor(rand() * 20_000))).join(""),
    "astral CJK (2 tokens a character)": (n) =>
      Array.from({ length: n }, () => String.fromCodePoint(0x20000 + Math.floor(rand() * 40_000))).join(""),
    punctuation: (n) =>
      Array.from({ length: n }, () => "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"[Math.floor(rand() * 32)]).join(""),
    "English prose": (n) => "The quick brown fox jumps over the lazy dog. ".repeat(Math.ceil(n / 45)).slice(0, n),
  };
  // Against the exact o200k count (gpt-oss) with its template allowances: any model's real tokens each cover at
  // least one byte too. The other families' counts are o200k × a calibrated scale, an estimate that can pass the
  // bytes on text o200k already splits into single bytes (rare astral characters), never a real count.
  for (const [name, gen] of Object.entries(texts))
    it(`is never below the exact o200k count with its allowances: ${name}, in content, name and tool_call_id`, () => {
      const text = gen(4_000);
      const body = {
        messages: [
          { role: "system", content: text },
          { role: "user", content: "hi", name: text.slice(0, 500) },
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: text.slice(0, 800) } }],
          },
          { role: "tool", tool_call_id: text.slice(0, 300), content: text.slice(0, 200) },
        ],
        tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
      };
      const bound = promptBytesUpperBound(body.messages, body.tools);
      const own = countPromptTokens(body, tokenizerFamilies["gpt-oss"]);
      assert.ok(bound >= own, `bound ${bound} < own count ${own}`);
      assert.ok(bound < 5 * own, `bound ${bound} is far above the count ${own}`);
    });
});
