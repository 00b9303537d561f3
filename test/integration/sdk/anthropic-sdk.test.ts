/**
 * The official `@anthropic-ai/sdk` client against a real coordinator and a simulated Mac over gRPC:
 * `messages.create`, `messages.stream` (events, final message, usage), both auth headers and a
 * tool_use → tool_result round trip. (SDK 1.x sends `apiKey` as `Authorization: Bearer`; older SDKs and
 * many Anthropic-native tools send `x-api-key`, so both must work.)
 */
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import { betaTool } from "@anthropic-ai/sdk/helpers/beta/json-schema";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";

const MODEL = "gpt-oss-20b";

const weatherTool: Anthropic.Tool = {
  name: "get_weather",
  description: "Current weather for a city",
  input_schema: {
    type: "object",
    properties: { city: { type: "string" }, days: { type: "integer" } },
    required: ["city"],
  },
};

describe("@anthropic-ai/sdk against the coordinator (messages, streaming, tool_use)", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  let client: Anthropic;
  const sentHeaders: Headers[] = [];

  before(async () => {
    t = await startTestCoordinator({ macs: [{ naturalTokens: { min: 10, max: 30 } }] });
    client = new Anthropic({
      baseURL: t.baseUrl,
      apiKey: t.apiKey,
      maxRetries: 0,
      // Records what the SDK actually sends, to know which auth header reached the coordinator.
      fetch: async (url, init) => {
        sentHeaders.push(new Headers(init?.headers));
        return fetch(url, init);
      },
    });
  });
  after(async () => t?.close());

  it("authenticates with an x-api-key header alone (no Authorization header)", async () => {
    const xKeyClient = new Anthropic({
      baseURL: t.baseUrl,
      apiKey: null,
      defaultHeaders: { "x-api-key": t.apiKey },
      maxRetries: 0,
      fetch: async (url, init) => {
        sentHeaders.push(new Headers(init?.headers));
        return fetch(url, init);
      },
    });
    const m = await xKeyClient.messages.create({
      model: MODEL,
      max_tokens: 64,
      messages: [{ role: "user", content: "Hi" }],
    });
    const h = sentHeaders.at(-1)!;
    assert.equal(h.get("x-api-key"), t.apiKey);
    assert.equal(h.get("authorization"), null);
    assert.equal(m.type, "message");
    assert.equal(m.content[0]?.type, "text");
  });

  it("authenticates with the SDK's default header and answers a non-streamed message", async () => {
    const m = await client.messages.create({
      model: MODEL,
      max_tokens: 64,
      system: "Be brief.",
      messages: [{ role: "user", content: "Say hello" }],
    });
    assert.equal(sentHeaders.at(-1)!.get("authorization"), `Bearer ${t.apiKey}`);
    assert.equal(m.type, "message");
    assert.equal(m.role, "assistant");
    assert.equal(m.model, MODEL);
    assert.equal(m.stop_reason, "end_turn");
    const block = m.content[0];
    assert.ok(block && block.type === "text" && block.text.length > 0);
    assert.ok(m.usage.input_tokens > 0);
    assert.ok(m.usage.output_tokens > 0 && m.usage.output_tokens <= 30);
  });

  it("reports max_tokens as the stop reason when the budget cuts the answer", async () => {
    const m = await client.messages.create({
      model: MODEL,
      max_tokens: 3,
      messages: [{ role: "user", content: "Tell a long story" }],
    });
    assert.equal(m.stop_reason, "max_tokens");
    assert.equal(m.usage.output_tokens, 3);
  });

  it("streams a message whose text events add up to the SDK's final message, with usage", async () => {
    const stream = client.messages.stream({
      model: MODEL,
      max_tokens: 64,
      messages: [{ role: "user", content: "Describe a window" }],
    });
    let text = "";
    const events: string[] = [];
    stream.on("text", (delta) => (text += delta));
    stream.on("streamEvent", (ev) => events.push(ev.type));
    const final = await stream.finalMessage();
    assert.equal(events[0], "message_start");
    assert.ok(events.includes("content_block_start"));
    assert.ok(events.includes("content_block_delta"));
    assert.ok(events.indexOf("content_block_stop") < events.indexOf("message_delta"));
    assert.equal(events.at(-1), "message_stop");
    assert.ok(text.length > 0);
    const block = final.content[0];
    assert.ok(block && block.type === "text");
    assert.equal(block.text, text);
    assert.equal(final.stop_reason, "end_turn");
    assert.ok(final.usage.input_tokens > 0, "message_delta's final input count reaches the final message");
    assert.ok(final.usage.output_tokens > 0 && final.usage.output_tokens <= 30);
  });

  it("runs a tool_use round trip: streamed tool_use block with JSON input, then a tool_result turn answered with text", async () => {
    t.macs[0]!.script({ kind: "tool_call" });
    const question: Anthropic.MessageParam = { role: "user", content: "What is the weather in Lisbon?" };
    const stream = client.messages.stream({
      model: MODEL,
      max_tokens: 128,
      tools: [weatherTool],
      messages: [question],
    });
    let partialJson = "";
    let jsonDeltas = 0;
    stream.on("streamEvent", (ev) => {
      if (ev.type === "content_block_delta" && ev.delta.type === "input_json_delta") {
        partialJson += ev.delta.partial_json;
        jsonDeltas++;
      }
    });
    const first = await stream.finalMessage();
    assert.equal(first.stop_reason, "tool_use");
    const use = first.content.find((b) => b.type === "tool_use");
    assert.ok(use && use.type === "tool_use");
    assert.equal(use.name, "get_weather");
    assert.match(use.id, /\S/);
    assert.ok(jsonDeltas > 1, "the input streams as several input_json_delta fragments");
    assert.deepEqual(use.input, JSON.parse(partialJson));
    const input = use.input as { city?: unknown; days?: unknown };
    assert.equal(typeof input.city, "string");
    assert.equal(typeof input.days, "number");

    const second = await client.messages.create({
      model: MODEL,
      max_tokens: 64,
      tools: [weatherTool],
      messages: [
        question,
        {
          role: "assistant",
          content: first.content.map((b) =>
            b.type === "tool_use" ? { type: "tool_use", id: b.id, name: b.name, input: b.input } : b,
          ) as Anthropic.ContentBlockParam[],
        },
        {
          role: "user",
          content: [{ type: "tool_result", tool_use_id: use.id, content: JSON.stringify({ temperature_c: 24 }) }],
        },
      ],
    });
    assert.equal(second.stop_reason, "end_turn");
    assert.equal(second.content.filter((b) => b.type === "tool_use").length, 0);
    const text = second.content.find((b) => b.type === "text");
    assert.ok(text && text.type === "text" && text.text.length > 0);
  });

  it("returns a non-streamed tool_use block whose input is an object", async () => {
    t.macs[0]!.script({ kind: "tool_call" });
    const m = await client.messages.create({
      model: MODEL,
      max_tokens: 128,
      tools: [weatherTool],
      messages: [{ role: "user", content: "Weather in Porto?" }],
    });
    assert.equal(m.stop_reason, "tool_use");
    const use = m.content.find((b) => b.type === "tool_use");
    assert.ok(use && use.type === "tool_use");
    assert.equal(typeof (use.input as { city?: unknown }).city, "string");
  });

  it("uses a tool when tool_choice is any (no script: what the demo fleet does)", async () => {
    const m = await client.messages.create({
      model: MODEL,
      max_tokens: 128,
      tools: [weatherTool],
      tool_choice: { type: "any" },
      messages: [{ role: "user", content: "Weather in Porto?" }],
    });
    assert.equal(m.stop_reason, "tool_use");
    assert.ok(m.content.some((b) => b.type === "tool_use" && b.name === "get_weather"));
  });

  it("completes the SDK's own toolRunner loop (beta messages endpoint): the tool runs once and the run ends in text", async () => {
    t.macs[0]!.script({ kind: "tool_call" });
    const calls: { city: string }[] = [];
    const runner = client.beta.messages.toolRunner({
      model: MODEL,
      max_tokens: 128,
      messages: [{ role: "user", content: "Weather in Faro?" }],
      tools: [
        betaTool({
          name: "get_weather",
          description: "Current weather for a city",
          inputSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
          run: (args) => {
            calls.push(args);
            return JSON.stringify({ temperature_c: 26 });
          },
        }),
      ],
    });
    const final = await runner.runUntilDone();
    assert.equal(calls.length, 1);
    assert.equal(typeof calls[0]!.city, "string");
    assert.equal(final.stop_reason, "end_turn");
    assert.ok(final.content.some((b) => b.type === "text" && b.text.length > 0));
  });
});
