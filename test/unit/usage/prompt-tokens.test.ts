import assert from "node:assert/strict";
import { IMAGE_UPPER_BOUND_TOKENS } from "../../../src/dialects/shared/prompt-estimate.js";
import {
  countPromptTokens,
  IMAGE_TOKENS,
  MESSAGE_TEMPLATE_TOKENS,
  PROMPT_SLACK_TOKENS,
  TOOL_CALL_TEMPLATE_TOKENS,
  TOOLS_TEMPLATE_TOKENS,
} from "../../../src/usage/prompt-tokens.js";
import { countTextTokens } from "../../../src/usage/token-counter.js";
import { tokenizerFamilies } from "../../../src/usage/tokenizer-family.js";

const gptOss = tokenizerFamilies["gpt-oss"];
const gemma = tokenizerFamilies.gemma;
const overhead = (messages: number) => messages * MESSAGE_TEMPLATE_TOKENS + PROMPT_SLACK_TOKENS;

describe("countPromptTokens", () => {
  it("counts message text in o200k tokens plus per-message and per-request template allowances", () => {
    const body = {
      model: "gpt-oss-20b",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hello world" },
      ],
    };
    assert.equal(countPromptTokens(body, gptOss), countTextTokens("Be brief.") + 2 + overhead(2));
  });

  it("scales the text by the tokenizer family, rounding up, but not the fixed allowances", () => {
    const body = { messages: [{ role: "user", content: "hello world" }] };
    assert.equal(countPromptTokens(body, gemma), Math.ceil(2 * 1.12) + overhead(1));
  });

  it("counts text parts, names, tool results, prior tool calls and the tool schemas", () => {
    const tools = [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather for a city",
          parameters: { type: "object", properties: { city: { type: "string" } } },
        },
      },
    ];
    const args = JSON.stringify({ city: "Paris" });
    const body = {
      messages: [
        {
          role: "user",
          name: "ada",
          content: [
            { type: "text", text: "Weather in Paris?" },
            { type: "text", text: "Be quick." },
          ],
        },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: args } }],
        },
        { role: "tool", tool_call_id: "call_1", content: "18°C and sunny" },
      ],
      tools,
    };
    const text = [
      "ada",
      "Weather in Paris?",
      "Be quick.",
      "get_weather",
      args,
      "call_1",
      "18°C and sunny",
      JSON.stringify(tools),
    ]
      .map(countTextTokens)
      .reduce((a, b) => a + b, 0);
    assert.equal(
      countPromptTokens(body, gptOss),
      text + overhead(3) + TOOL_CALL_TEMPLATE_TOKENS + TOOLS_TEMPLATE_TOKENS,
    );
  });

  it("allows the dialects' upper-bound image cost per image and never counts data-URL bytes as text", () => {
    assert.equal(IMAGE_TOKENS, IMAGE_UPPER_BOUND_TOKENS);
    const image = (detail: string) => ({
      type: "image_url",
      image_url: { url: `data:image/png;base64,${"QUJD".repeat(50_000)}`, detail },
    });
    const body = {
      messages: [{ role: "user", content: [{ type: "text", text: "hello world" }, image("low"), image("high")] }],
    };
    assert.equal(countPromptTokens(body, gptOss), 2 + 2 * IMAGE_TOKENS + overhead(1));
  });

  it("skips malformed messages and parts instead of throwing", () => {
    assert.equal(countPromptTokens({}, gptOss), PROMPT_SLACK_TOKENS);
    const body = {
      messages: [
        null,
        7,
        { role: "user", content: [null, 3, { type: "text", text: 5 }, { type: "input_audio" }] },
        { role: "assistant", content: null, tool_calls: [null, { function: null }] },
      ],
      tools: [],
    };
    assert.equal(countPromptTokens(body, gptOss), overhead(2) + TOOL_CALL_TEMPLATE_TOKENS);
  });

  it("counts a 100 KB prompt of prose and code", () => {
    const para = "The provider streams tokens back over gRPC; the coordinator bills the consumer's account. ";
    const code =
      "function settle(usage: Usage): void {\n  ledger.commit(usage.promptTokens, usage.completionTokens);\n}\n";
    const big = (para + code).repeat(Math.ceil(100_000 / (para + code).length));
    const body = {
      messages: [
        { role: "system", content: big.slice(0, 50_000) },
        { role: "user", content: big.slice(50_000, 100_000) },
      ],
    };
    const n = countPromptTokens(body, gptOss);
    assert.ok(n > 20_000 && n < 30_000, `counted ${n}`);
  });
});
