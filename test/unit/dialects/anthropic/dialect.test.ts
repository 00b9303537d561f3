import assert from "node:assert/strict";
import { anthropicMessagesDialect } from "../../../../src/dialects/anthropic/dialect.js";
import { CoordinatorError } from "../../../../src/errors/coordinator-error.js";
import type { Delta } from "../../../../src/inference/types.js";
import { anthropicEvents, anthropicFinalMessage, ctx, meta, namedEvents } from "../sdk-streams.js";

const usage = { promptTokens: 30, completionTokens: 11, reasoningTokens: 0 };

function paramOf(body: unknown): string | undefined {
  try {
    anthropicMessagesDialect.parse(body, ctx);
  } catch (e) {
    assert.ok(e instanceof CoordinatorError);
    assert.equal(e.code, "invalid_request");
    return e.param;
  }
  assert.fail("expected a CoordinatorError");
}

describe("anthropic messages dialect: parse", () => {
  it("translates system, images, tool_use and tool_result blocks into chat form", () => {
    const req = anthropicMessagesDialect.parse(
      {
        model: "m",
        max_tokens: 256,
        system: [{ type: "text", text: "You are terse." }],
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "what is this?" },
              { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
              { type: "image", source: { type: "url", url: "https://example.com/a.jpg" } },
            ],
          },
          {
            role: "assistant",
            content: [
              { type: "thinking", thinking: "...", signature: "s" },
              { type: "text", text: "Let me check." },
              { type: "tool_use", id: "toolu_1", name: "lookup", input: { q: "cat" } },
            ],
          },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: "toolu_1", content: [{ type: "text", text: "a cat" }] },
              { type: "text", text: "thanks" },
            ],
          },
        ],
        tools: [
          {
            name: "lookup",
            description: "search",
            input_schema: { type: "object", properties: { q: { type: "string" } } },
          },
        ],
        tool_choice: { type: "any", disable_parallel_tool_use: true },
        stop_sequences: ["\n\nHuman:"],
        temperature: 0.5,
        top_k: 40,
        stream: true,
        metadata: { user_id: "u-9" },
      },
      ctx,
    );
    const msgs = req.body.messages as any[];
    assert.deepEqual(msgs[0], { role: "system", content: "You are terse." });
    assert.deepEqual(msgs[1].content[1], {
      type: "image_url",
      image_url: { url: "data:image/png;base64,iVBORw0KGgo=" },
    });
    assert.deepEqual(msgs[1].content[2], { type: "image_url", image_url: { url: "https://example.com/a.jpg" } });
    assert.deepEqual(msgs[2], {
      role: "assistant",
      content: "Let me check.",
      tool_calls: [{ id: "toolu_1", type: "function", function: { name: "lookup", arguments: '{"q":"cat"}' } }],
    });
    assert.deepEqual(msgs[3], { role: "tool", tool_call_id: "toolu_1", content: "a cat" });
    assert.deepEqual(msgs[4], { role: "user", content: [{ type: "text", text: "thanks" }] });
    assert.deepEqual(req.body.tools, [
      {
        type: "function",
        function: {
          name: "lookup",
          description: "search",
          parameters: { type: "object", properties: { q: { type: "string" } } },
        },
      },
    ]);
    assert.equal(req.body.tool_choice, "required");
    assert.equal(req.body.parallel_tool_calls, false);
    assert.deepEqual(req.body.stop, ["\n\nHuman:"]);
    assert.equal(req.body.top_k, 40);
    assert.equal(req.body.max_tokens, 256);
    assert.equal(req.affinityKey, "u-9");
    assert.equal(req.traits.requiresVision, true);
    assert.equal(req.traits.hasTools, true);
    assert.equal(req.traits.stream, true);
  });

  const cases: Array<[string, unknown, string | undefined]> = [
    ["a missing max_tokens", { model: "m", messages: [{ role: "user", content: "x" }] }, "max_tokens"],
    ["a zero max_tokens", { model: "m", max_tokens: 0, messages: [{ role: "user", content: "x" }] }, "max_tokens"],
    [
      "a system role in messages",
      { model: "m", max_tokens: 5, messages: [{ role: "system", content: "x" }] },
      "messages[0].role",
    ],
    [
      "a server tool",
      {
        model: "m",
        max_tokens: 5,
        messages: [{ role: "user", content: "x" }],
        tools: [{ type: "web_search_20250305", name: "web_search" }],
      },
      "tools[0].type",
    ],
    [
      "a tool without input_schema",
      { model: "m", max_tokens: 5, messages: [{ role: "user", content: "x" }], tools: [{ name: "t" }] },
      "tools[0].input_schema",
    ],
    [
      "a bad image source",
      {
        model: "m",
        max_tokens: 5,
        messages: [{ role: "user", content: [{ type: "image", source: { type: "file", file_id: "f" } }] }],
      },
      "messages[0].content[0].source.type",
    ],
    [
      "temperature above 1",
      { model: "m", max_tokens: 5, messages: [{ role: "user", content: "x" }], temperature: 1.5 },
      "temperature",
    ],
  ];
  for (const [what, body, param] of cases) {
    it(`rejects ${what} with a 400 naming ${param}`, () => assert.equal(paramOf(body), param));
  }
});

describe("anthropic messages dialect: render", () => {
  const deltas: Delta[] = [
    { kind: "role", role: "assistant" },
    { kind: "reasoning", text: "pondering" },
    { kind: "content", text: "Checking" },
    { kind: "content", text: " now." },
    { kind: "tool_call", index: 0, id: "call_7", name: "lookup", arguments: '{"q":' },
    { kind: "tool_call", index: 0, arguments: '"cat"}' },
  ];

  function render(): string {
    const r = anthropicMessagesDialect.streamRenderer(meta({ promptTokens: 28 }));
    return r.start() + r.deltas(deltas) + r.finish("tool_calls", usage);
  }

  it("emits message_start, sequential content blocks, message_delta and message_stop", () => {
    const evs = namedEvents(render());
    assert.deepEqual(
      evs.map((e) => (e.data.type === "content_block_delta" ? `${e.event}:${e.data.delta.type}` : e.event)),
      [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta:thinking_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta:text_delta",
        "content_block_delta:text_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta:input_json_delta",
        "content_block_delta:input_json_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
      ],
    );
    assert.ok(evs.every((e) => e.data.type === e.event));
    assert.equal(evs[0]!.data.message.usage.input_tokens, 28);
    assert.deepEqual(evs[9]!.data.content_block, { type: "tool_use", id: "call_7", name: "lookup", input: {} });
    assert.deepEqual(evs.at(-2)!.data, {
      type: "message_delta",
      delta: { stop_reason: "tool_use", stop_sequence: null },
      usage: { input_tokens: 30, output_tokens: 11 },
    });
  });

  it("is accumulated by the Anthropic SDK's MessageStream into the final Message", async () => {
    const msg = await anthropicFinalMessage(render());
    assert.equal(msg.id, "msg_req_1");
    assert.equal(msg.stop_reason, "tool_use");
    assert.deepEqual(msg.usage.input_tokens, 30);
    assert.deepEqual(msg.usage.output_tokens, 11);
    assert.deepEqual(
      msg.content.map((b) => b.type),
      ["thinking", "text", "tool_use"],
    );
    const [thinking, text, tool] = msg.content;
    assert.ok(thinking?.type === "thinking" && thinking.thinking === "pondering");
    assert.ok(text?.type === "text" && text.text === "Checking now.");
    assert.ok(tool?.type === "tool_use");
    assert.deepEqual(tool.input, { q: "cat" });
  });

  it("maps finish reasons to Anthropic stop reasons", () => {
    const expected = {
      stop: "end_turn",
      length: "max_tokens",
      tool_calls: "tool_use",
      content_filter: "refusal",
    } as const;
    for (const [reason, stop] of Object.entries(expected)) {
      const acc = anthropicMessagesDialect.accumulator(meta());
      acc.deltas([{ kind: "content", text: "x" }]);
      assert.equal((acc.finish(reason as keyof typeof expected, usage) as any).stop_reason, stop);
    }
  });

  it("ends a cut stream with an error event the Anthropic SDK raises with the error type", async () => {
    const r = anthropicMessagesDialect.streamRenderer(meta());
    const text =
      r.start() +
      r.deltas([{ kind: "content", text: "par" }]) +
      r.error(new CoordinatorError("capacity_exhausted", "busy"));
    assert.match(
      text,
      /event: error\ndata: \{"type":"error","error":\{"type":"rate_limit_error","message":"busy"\}\}\n\n$/,
    );
    await assert.rejects(
      anthropicEvents(text),
      (e: any) => e.constructor.name === "APIError" && /busy/.test(e.message),
    );
  });

  it("accumulates a non-stream Message with parsed tool input and usage", () => {
    const acc = anthropicMessagesDialect.accumulator(meta());
    acc.deltas(deltas);
    acc.deltas([{ kind: "tool_call", index: 1, name: "bad", arguments: "{not json" }]);
    const out = acc.finish("stop", usage) as any;
    assert.equal(out.type, "message");
    assert.equal(out.role, "assistant");
    assert.equal(out.stop_reason, "tool_use");
    assert.deepEqual(out.content[2], { type: "tool_use", id: "call_7", name: "lookup", input: { q: "cat" } });
    assert.deepEqual(out.content[3], { type: "tool_use", id: "toolu_req_1_1", name: "bad", input: {} });
    assert.deepEqual(out.usage, {
      input_tokens: 30,
      output_tokens: 11,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
    });
  });

  it("uses the Anthropic error body shape", () => {
    assert.deepEqual(anthropicMessagesDialect.errorBody(new CoordinatorError("unauthenticated", "no key")), {
      type: "error",
      error: { type: "authentication_error", message: "no key" },
    });
  });
});
