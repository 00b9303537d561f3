/**
 * Vercel's `ai` SDK (v6) with `@ai-sdk/openai-compatible` against a real coordinator and a simulated Mac:
 * `streamText` and `generateText` through the coordinator's OpenAI-compatible base URL, with usage, and a
 * streamed tool call.
 */
import assert from "node:assert/strict";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText, jsonSchema, streamText, tool } from "ai";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";

const MODEL = "gpt-oss-20b";

describe("Vercel ai SDK (openai-compatible provider) against the coordinator", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  let provider: ReturnType<typeof createOpenAICompatible>;

  before(async () => {
    t = await startTestCoordinator({ macs: [{ naturalTokens: { min: 10, max: 30 } }] });
    provider = createOpenAICompatible({
      name: "coordinator",
      baseURL: t.apiBase,
      apiKey: t.apiKey,
      includeUsage: true,
    });
  });
  after(async () => t?.close());

  it("streams text with streamText and reports the stream's usage", async () => {
    const result = streamText({
      model: provider(MODEL),
      prompt: "Describe a quiet river",
      maxOutputTokens: 64,
      maxRetries: 0,
    });
    let streamed = "";
    for await (const piece of result.textStream) streamed += piece;
    const [text, usage, finishReason] = await Promise.all([result.text, result.usage, result.finishReason]);
    assert.ok(streamed.length > 0);
    assert.equal(text, streamed);
    assert.equal(finishReason, "stop");
    assert.ok((usage.inputTokens ?? 0) > 0, "prompt tokens arrive via stream_options.include_usage");
    assert.ok((usage.outputTokens ?? 0) > 0 && (usage.outputTokens ?? 0) <= 30);
    assert.equal(usage.totalTokens, (usage.inputTokens ?? 0) + (usage.outputTokens ?? 0));
  });

  it("answers generateText with text, a length finish reason under a small budget, and usage", async () => {
    const r = await generateText({
      model: provider(MODEL),
      prompt: "Tell a long story",
      maxOutputTokens: 5,
      maxRetries: 0,
    });
    assert.ok(r.text.length > 0);
    assert.equal(r.finishReason, "length");
    assert.equal(r.usage.outputTokens, 5);
  });

  it("streams a tool call that the SDK parses into typed input", async () => {
    t.macs[0]!.script({ kind: "tool_call" });
    const result = streamText({
      model: provider(MODEL),
      prompt: "What is the weather in Madrid?",
      maxRetries: 0,
      tools: {
        get_weather: tool({
          description: "Current weather for a city",
          inputSchema: jsonSchema<{ city: string }>({
            type: "object",
            properties: { city: { type: "string" } },
            required: ["city"],
          }),
        }),
      },
    });
    const [calls, finishReason] = await Promise.all([result.toolCalls, result.finishReason]);
    assert.equal(finishReason, "tool-calls");
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.toolName, "get_weather");
    assert.equal(typeof (calls[0]!.input as { city?: unknown }).city, "string");
  });
});
