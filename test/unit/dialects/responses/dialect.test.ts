import assert from "node:assert/strict";
import { responsesDialect } from "../../../../src/dialects/responses/dialect.js";
import { CoordinatorError } from "../../../../src/errors/coordinator-error.js";
import type { Delta } from "../../../../src/inference/types.js";
import { ctx, meta, namedEvents, openaiEvents, openaiFinalResponse } from "../sdk-streams.js";

const usage = { promptTokens: 20, completionTokens: 9, reasoningTokens: 4 };

function paramOf(body: unknown): string | undefined {
  try {
    responsesDialect.parse(body, ctx);
  } catch (e) {
    assert.ok(e instanceof CoordinatorError);
    assert.equal(e.code, "invalid_request");
    return e.param;
  }
  assert.fail("expected a CoordinatorError");
}

describe("responses dialect: parse", () => {
  it("turns a string input and instructions into system + user messages", () => {
    const req = responsesDialect.parse(
      { model: "m", input: "hi", instructions: "be brief", max_output_tokens: 50 },
      ctx,
    );
    assert.deepEqual(req.body.messages, [
      { role: "system", content: "be brief" },
      { role: "user", content: "hi" },
    ]);
    assert.equal(req.body.max_tokens, 50);
    assert.equal(req.traits.maxTokens, 50);
    assert.equal(req.body.stream, false);
  });

  it("translates message, function_call and function_call_output items and flat tools", () => {
    const req = responsesDialect.parse(
      {
        model: "m",
        stream: true,
        input: [
          {
            role: "user",
            content: [
              { type: "input_text", text: "weather " },
              { type: "input_image", image_url: "data:image/jpeg;base64,AAAA", detail: "low" },
            ],
          },
          { type: "function_call", call_id: "c1", name: "w", arguments: '{"q":1}' },
          { type: "function_call", call_id: "c2", name: "w", arguments: "{}" },
          { type: "function_call_output", call_id: "c1", output: "sunny" },
          { type: "reasoning", id: "rs_1", summary: [] },
          { type: "message", role: "assistant", content: [{ type: "output_text", text: "It is sunny." }] },
        ],
        tools: [
          {
            type: "function",
            name: "w",
            description: "weather",
            parameters: { type: "object", properties: { q: { type: "integer" } } },
            strict: false,
          },
        ],
        tool_choice: { type: "function", name: "w" },
        text: { format: { type: "json_schema", name: "out", schema: { type: "object" }, strict: true } },
        prompt_cache_key: "k",
      },
      ctx,
    );
    const msgs = req.body.messages as any[];
    assert.deepEqual(msgs[0].content[1], {
      type: "image_url",
      image_url: { url: "data:image/jpeg;base64,AAAA", detail: "low" },
    });
    assert.deepEqual(
      msgs[1].tool_calls.map((c: any) => c.id),
      ["c1", "c2"],
    );
    assert.deepEqual(msgs[2], { role: "tool", tool_call_id: "c1", content: "sunny" });
    assert.deepEqual(msgs[3], { role: "assistant", content: "It is sunny." });
    assert.deepEqual(req.body.tools, [
      {
        type: "function",
        function: {
          name: "w",
          description: "weather",
          parameters: { type: "object", properties: { q: { type: "integer" } } },
          strict: false,
        },
      },
    ]);
    assert.deepEqual(req.body.tool_choice, { type: "function", function: { name: "w" } });
    assert.deepEqual(req.body.response_format, {
      type: "json_schema",
      json_schema: { name: "out", schema: { type: "object" }, strict: true },
    });
    assert.equal(req.traits.requiresVision, true);
    assert.equal(req.traits.hasTools, true);
    assert.equal(req.traits.stream, true);
    assert.equal(req.affinityKey, "k");
    assert.equal(req.body.max_tokens, 4096);
  });

  const cases: Array<[string, unknown, string | undefined]> = [
    ["a missing input", { model: "m" }, "input"],
    ["an empty input string", { model: "m", input: "" }, "input"],
    ["a missing model", { input: "x" }, "model"],
    ["previous_response_id", { model: "m", input: "x", previous_response_id: "resp_1" }, "previous_response_id"],
    ["a hosted tool", { model: "m", input: "x", tools: [{ type: "web_search" }] }, "tools[0].type"],
    ["an item reference", { model: "m", input: [{ type: "item_reference", id: "x" }] }, "input[0].type"],
    ["a zero max_output_tokens", { model: "m", input: "x", max_output_tokens: 0 }, "max_output_tokens"],
    [
      "an image file_id",
      { model: "m", input: [{ role: "user", content: [{ type: "input_image", file_id: "f" }] }] },
      "input[0].content[0].file_id",
    ],
  ];
  for (const [what, body, param] of cases) {
    it(`rejects ${what} with a 400 naming ${param}`, () => assert.equal(paramOf(body), param));
  }
});

describe("responses dialect: render", () => {
  const deltas: Delta[] = [
    { kind: "role", role: "assistant" },
    { kind: "reasoning", text: "hmm" },
    { kind: "content", text: "Hi " },
    { kind: "content", text: "there" },
    { kind: "tool_call", index: 0, id: "call_x", name: "lookup", arguments: '{"a":' },
    { kind: "tool_call", index: 0, arguments: "1}" },
  ];

  function render(reason: "stop" | "length" | "tool_calls" = "tool_calls"): string {
    const r = responsesDialect.streamRenderer(meta());
    return r.start() + r.deltas(deltas.slice(0, 3)) + r.deltas(deltas.slice(3)) + r.finish(reason, usage);
  }

  it("emits the Responses lifecycle in order with consecutive sequence numbers and no [DONE]", () => {
    const text = render();
    assert.ok(!text.includes("[DONE]"));
    const evs = namedEvents(text);
    assert.deepEqual(
      evs.map((e) => e.event),
      [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
      ],
    );
    assert.ok(evs.every((e, i) => e.data.type === e.event && e.data.sequence_number === i));
    const completed = evs.at(-1)!.data.response;
    assert.equal(completed.status, "completed");
    assert.deepEqual(completed.usage, {
      input_tokens: 20,
      input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
      output_tokens: 9,
      output_tokens_details: { reasoning_tokens: 4 },
      total_tokens: 29,
    });
    assert.equal(evs[0]!.data.response.status, "in_progress");
  });

  it("is accumulated by the openai SDK's ResponseStream into the final Response", async () => {
    const final = await openaiFinalResponse(render());
    assert.equal(final.id, "resp_req_1");
    assert.equal(final.status, "completed");
    assert.equal(final.output_text, "Hi there");
    assert.deepEqual(
      final.output.map((o) => o.type),
      ["reasoning", "message", "function_call"],
    );
    const fc = final.output[2]!;
    assert.ok(fc.type === "function_call");
    assert.equal(fc.call_id, "call_x");
    assert.equal(fc.name, "lookup");
    assert.equal(fc.arguments, '{"a":1}');
    const rs = final.output[0]!;
    assert.ok(rs.type === "reasoning");
    assert.equal(rs.content?.[0]?.text, "hmm");
    assert.equal(final.usage?.output_tokens_details.reasoning_tokens, 4);
  });

  it("reports an exhausted budget as response.incomplete with max_output_tokens", async () => {
    const r = responsesDialect.streamRenderer(meta());
    const text = r.start() + r.deltas([{ kind: "content", text: "cut" }]) + r.finish("length", usage);
    const last = namedEvents(text).at(-1)!;
    assert.equal(last.event, "response.incomplete");
    assert.deepEqual(last.data.response.incomplete_details, { reason: "max_output_tokens" });
    const final = await openaiFinalResponse(text);
    assert.equal(final.status, "incomplete");
    assert.equal(final.output_text, "cut");
    assert.deepEqual(
      final.output.map((o) => (o as { status?: string }).status),
      ["incomplete"],
      "the cut message item is incomplete, not completed",
    );
  });

  it("ends a cut stream with an error event the openai SDK raises as an APIError", async () => {
    const r = responsesDialect.streamRenderer(meta());
    const text =
      r.start() + r.deltas([{ kind: "content", text: "par" }]) + r.error(new CoordinatorError("timeout", "too slow"));
    const last = namedEvents(text).at(-1)!;
    assert.equal(last.event, "error");
    assert.equal(last.data.type, "error");
    assert.equal(last.data.code, "timeout");
    assert.equal(last.data.message, "too slow");
    assert.equal(last.data.param, null);
    assert.equal(last.data.sequence_number, 5);
    assert.ok(!text.includes("[DONE]"));
    await assert.rejects(
      openaiEvents(text),
      (e: any) => e.constructor.name === "APIError" && /too slow/.test(e.message),
    );
  });

  it("accumulates a non-stream Response object", () => {
    const acc = responsesDialect.accumulator(meta());
    acc.deltas(deltas);
    const out = acc.finish("stop", usage) as any;
    assert.equal(out.object, "response");
    assert.equal(out.status, "completed");
    assert.equal(out.output_text, undefined);
    assert.deepEqual(out.output[1].content, [{ type: "output_text", annotations: [], logprobs: [], text: "Hi there" }]);
    assert.equal(out.output[2].arguments, '{"a":1}');
    assert.ok(out.output.every((o: any) => o.status === "completed"));
    assert.equal(out.usage.total_tokens, 29);
  });
});
