import assert from "node:assert/strict";
import { chatCompletionsDialect } from "../../../../src/dialects/chat/dialect.js";
import { CoordinatorError } from "../../../../src/errors/coordinator-error.js";
import type { Delta } from "../../../../src/inference/types.js";
import { ctx, meta, openaiEvents, openaiFinalChat } from "../sdk-streams.js";

const PNG = "data:image/png;base64,iVBORw0KGgo=";
const usage = { promptTokens: 12, completionTokens: 7, reasoningTokens: 3 };

function parseError(body: unknown): CoordinatorError {
  try {
    chatCompletionsDialect.parse(body, ctx);
  } catch (e) {
    assert.ok(e instanceof CoordinatorError);
    return e;
  }
  assert.fail("expected a CoordinatorError");
}

describe("chat completions dialect: parse", () => {
  it("builds a clean provider body with an injected max_tokens and explicit stream flag", () => {
    const req = chatCompletionsDialect.parse(
      { model: "qwen3-8b", messages: [{ role: "user", content: "hi" }], store: true, metadata: { a: 1 } },
      ctx,
    );
    assert.deepEqual(req.body, {
      model: "qwen3-8b",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 4096,
      stream: false,
    });
    assert.equal(req.traits.maxTokens, 4096);
    assert.equal(req.traits.hasTools, false);
    assert.equal(req.traits.requiresVision, false);
    assert.equal(req.affinityKey, undefined);
  });

  it("forwards sampling params, tools, tool_choice and response_format, preferring max_completion_tokens", () => {
    const tools = [
      { type: "function", function: { name: "get", description: "d", parameters: { type: "object", properties: {} } } },
    ];
    const req = chatCompletionsDialect.parse(
      {
        model: "m",
        messages: [
          { role: "developer", content: "sys" },
          { role: "user", content: "x" },
        ],
        tools,
        tool_choice: { type: "function", function: { name: "get" } },
        response_format: { type: "json_object" },
        temperature: 0.2,
        top_p: 0.9,
        presence_penalty: 0.5,
        frequency_penalty: -0.5,
        seed: 7,
        stop: "END",
        max_tokens: 10,
        max_completion_tokens: 20,
        stream: true,
        stream_options: { include_usage: true },
        user: "u1",
        prompt_cache_key: "pck",
      },
      ctx,
    );
    assert.equal(req.body.max_tokens, 20);
    assert.deepEqual(req.body.stop, ["END"]);
    assert.deepEqual(req.body.tools, tools);
    assert.deepEqual(req.body.tool_choice, { type: "function", function: { name: "get" } });
    assert.deepEqual((req.body.messages as any[])[0], { role: "system", content: "sys" });
    assert.equal(req.body.stream, true);
    assert.equal(req.body.seed, 7);
    assert.equal(req.body.user, "u1");
    assert.equal(req.affinityKey, "pck");
    assert.equal(req.traits.hasTools, true);
    assert.equal(req.traits.stream, true);
    assert.equal(req.body.stream_options, undefined);
  });

  it("marks image parts as requiring vision and counts them in the estimate", () => {
    const text = chatCompletionsDialect.parse({ model: "m", messages: [{ role: "user", content: "look" }] }, ctx);
    const img = chatCompletionsDialect.parse(
      {
        model: "m",
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "look" },
              { type: "image_url", image_url: { url: PNG, detail: "low" } },
              { type: "image_url", image_url: { url: "https://example.com/cat.png" } },
            ],
          },
        ],
      },
      ctx,
    );
    assert.equal(img.traits.requiresVision, true);
    assert.equal(img.traits.estimatedPromptTokens - text.traits.estimatedPromptTokens, 85 + 765);
  });

  it("keeps assistant tool calls and tool results in the history", () => {
    const req = chatCompletionsDialect.parse(
      {
        model: "m",
        messages: [
          { role: "user", content: "weather?" },
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "c1", type: "function", function: { name: "w", arguments: "{}" } }],
          },
          { role: "tool", tool_call_id: "c1", content: "sunny" },
        ],
      },
      ctx,
    );
    const msgs = req.body.messages as any[];
    assert.equal(msgs[1].tool_calls[0].function.name, "w");
    assert.deepEqual(msgs[2], { role: "tool", content: "sunny", tool_call_id: "c1" });
  });

  const cases: Array<[string, unknown, string | undefined]> = [
    ["a non-object body", [1], undefined],
    ["a missing model", { messages: [{ role: "user", content: "x" }] }, "model"],
    ["an empty model", { model: "", messages: [{ role: "user", content: "x" }] }, "model"],
    ["missing messages", { model: "m" }, "messages"],
    ["empty messages", { model: "m", messages: [] }, "messages"],
    ["a bad role", { model: "m", messages: [{ role: "robot", content: "x" }] }, "messages[0].role"],
    ["n > 1", { model: "m", messages: [{ role: "user", content: "x" }], n: 2 }, "n"],
    ["max_tokens 0", { model: "m", messages: [{ role: "user", content: "x" }], max_tokens: 0 }, "max_tokens"],
    [
      "negative max_completion_tokens",
      { model: "m", messages: [{ role: "user", content: "x" }], max_completion_tokens: -5 },
      "max_completion_tokens",
    ],
    [
      "a string temperature",
      { model: "m", messages: [{ role: "user", content: "x" }], temperature: "hot" },
      "temperature",
    ],
    [
      "a bad image URL",
      { model: "m", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "ftp://x" } }] }] },
      "messages[0].content[0].image_url.url",
    ],
    [
      "stream_options without stream",
      { model: "m", messages: [{ role: "user", content: "x" }], stream_options: { include_usage: true } },
      "stream_options",
    ],
    [
      "an unknown tool_choice name",
      {
        model: "m",
        messages: [{ role: "user", content: "x" }],
        tools: [],
        tool_choice: { type: "function", function: { name: "nope" } },
      },
      "tool_choice",
    ],
    [
      "a non-function tool",
      { model: "m", messages: [{ role: "user", content: "x" }], tools: [{ type: "retrieval" }] },
      "tools[0].type",
    ],
  ];
  for (const [what, body, param] of cases) {
    it(`rejects ${what} with a 400 naming ${param ?? "no param"}`, () => {
      const e = parseError(body);
      assert.equal(e.code, "invalid_request");
      assert.equal(e.status, 400);
      assert.equal(e.param, param);
    });
  }

  it("rejects http image URLs when the policy allows only data URLs", () => {
    assert.throws(
      () =>
        chatCompletionsDialect.parse(
          {
            model: "m",
            messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://x/y.png" } }] }],
          },
          { ...ctx, allowImageUrls: false },
        ),
      (e: unknown) => e instanceof CoordinatorError && e.param === "messages[0].content[0].image_url.url",
    );
  });
});

describe("chat completions dialect: render", () => {
  const toolDeltas: Delta[] = [
    { kind: "role", role: "assistant" },
    { kind: "reasoning", text: "think" },
    { kind: "content", text: "Hel" },
    { kind: "content", text: "lo" },
    { kind: "tool_call", index: 0, id: "call_a", name: "get_weather", arguments: '{"ci' },
    { kind: "tool_call", index: 0, arguments: 'ty":"Paris"}' },
    { kind: "tool_call", index: 1, name: "noop" },
  ];

  it("streams the exact chunk sequence: role, merged text, tool-call fragments, finish, usage, [DONE]", () => {
    const r = chatCompletionsDialect.streamRenderer(meta({ includeUsage: true }));
    const text = r.start() + r.deltas(toolDeltas) + r.finish("tool_calls", usage);
    const chunks = text.split("\n\n").filter(Boolean);
    assert.equal(chunks.at(-1), "data: [DONE]");
    const objs = chunks.slice(0, -1).map((c) => JSON.parse(c.replace(/^data: /, "")));
    assert.deepEqual(
      objs.map((o) => o.choices[0]?.delta ?? null),
      [
        { role: "assistant", content: "" },
        { reasoning_content: "think" },
        { content: "Hello" },
        {
          tool_calls: [
            { index: 0, id: "call_a", type: "function", function: { name: "get_weather", arguments: '{"ci' } },
          ],
        },
        { tool_calls: [{ index: 0, function: { arguments: 'ty":"Paris"}' } }] },
        { tool_calls: [{ index: 1, id: "call_req_1_1", type: "function", function: { name: "noop", arguments: "" } }] },
        {},
        null,
      ],
    );
    assert.equal(objs[6].choices[0].finish_reason, "tool_calls");
    assert.deepEqual(objs[7].choices, []);
    assert.deepEqual(objs[7].usage, {
      prompt_tokens: 12,
      completion_tokens: 7,
      total_tokens: 19,
      completion_tokens_details: { reasoning_tokens: 3 },
    });
    assert.ok(objs.every((o) => o.id === "chatcmpl-req_1" && o.object === "chat.completion.chunk"));
  });

  it("is accumulated by the openai SDK into the expected completion", async () => {
    const r = chatCompletionsDialect.streamRenderer(meta({ includeUsage: true }));
    const final = await openaiFinalChat(r.start() + r.deltas(toolDeltas) + r.finish("stop", usage));
    const msg = final.choices[0]!.message;
    assert.equal(msg.content, "Hello");
    assert.deepEqual(
      msg.tool_calls?.map((c) => (c.type === "function" ? [c.id, c.function.name, c.function.arguments] : null)),
      [
        ["call_a", "get_weather", '{"city":"Paris"}'],
        ["call_req_1_1", "noop", ""],
      ],
    );
    assert.equal(final.choices[0]!.finish_reason, "tool_calls"); // a stop after tool calls is reported as tool_calls
    assert.equal(final.usage?.total_tokens, 19);
  });

  it("omits the usage chunk when include_usage is off", async () => {
    const r = chatCompletionsDialect.streamRenderer(meta());
    const items = await openaiEvents(
      r.start() + r.deltas([{ kind: "content", text: "x" }]) + r.finish("length", usage),
    );
    assert.equal(items.length, 3);
    assert.equal(items[2]!.choices[0].finish_reason, "length");
    assert.ok(items.every((i) => i.usage === undefined));
  });

  it("ends a cut stream with an in-band error that the openai SDK raises as an APIError", async () => {
    const r = chatCompletionsDialect.streamRenderer(meta());
    const err = new CoordinatorError("provider_failed", "provider went away");
    const text = r.start() + r.deltas([{ kind: "content", text: "partial" }]) + r.error(err);
    assert.match(
      text,
      /data: \{"error":\{"message":"provider went away","type":"api_error","code":"provider_failed","param":null\}\}\n\ndata: \[DONE\]\n\n$/,
    );
    await assert.rejects(
      openaiEvents(text),
      (e: any) => e.constructor.name === "APIError" && /provider went away/.test(e.message),
    );
  });

  it("accumulates a non-stream chat.completion with reasoning, tool calls and usage", () => {
    const acc = chatCompletionsDialect.accumulator(meta());
    acc.deltas(toolDeltas);
    const out = acc.finish("tool_calls", usage) as any;
    assert.equal(out.object, "chat.completion");
    assert.equal(out.id, "chatcmpl-req_1");
    assert.equal(out.choices[0].message.content, "Hello");
    assert.equal(out.choices[0].message.reasoning_content, "think");
    assert.equal(out.choices[0].message.tool_calls[0].function.arguments, '{"city":"Paris"}');
    assert.equal(out.choices[0].finish_reason, "tool_calls");
    assert.equal(out.usage.completion_tokens_details.reasoning_tokens, 3);
  });

  it("reports null content on a pure tool-call turn", () => {
    const acc = chatCompletionsDialect.accumulator(meta());
    acc.deltas([{ kind: "tool_call", index: 0, id: "c", name: "f", arguments: "{}" }]);
    const out = acc.finish("tool_calls", usage) as any;
    assert.equal(out.choices[0].message.content, null);
    assert.equal(out.choices[0].message.reasoning_content, undefined);
  });
});
