/**
 * The official `openai` client (v6) against a real coordinator and simulated Macs over gRPC: chat, legacy
 * completions and Responses, streamed and not, plus tool-call round trips on chat and on Responses.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";

const MODEL = "gpt-oss-20b";

const weatherTool: OpenAI.Chat.ChatCompletionFunctionTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather for a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" }, unit: { type: "string", enum: ["c", "f"] } },
      required: ["city"],
    },
  },
};

describe("openai SDK against the coordinator (chat, completions, responses, tools)", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  let client: OpenAI;

  before(async () => {
    // One Mac, so a scripted tool call is consumed by the request that is meant to get it. Answers are
    // 10-30 tokens, so a 64-token budget ends naturally ("stop" / "completed").
    t = await startTestCoordinator({ macs: [{ naturalTokens: { min: 10, max: 30 } }] });
    client = new OpenAI({ baseURL: t.apiBase, apiKey: t.apiKey, maxRetries: 0 });
  });
  after(async () => t?.close());

  it("answers a non-streamed chat completion with text and consistent usage", async () => {
    const r = await client.chat.completions.create({
      model: MODEL,
      max_tokens: 24,
      messages: [{ role: "user", content: "Say hello" }],
    });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.model, MODEL);
    assert.equal(r.choices[0]!.message.role, "assistant");
    assert.ok((r.choices[0]!.message.content ?? "").length > 0);
    assert.ok(r.choices[0]!.finish_reason === "stop" || r.choices[0]!.finish_reason === "length");
    assert.ok(r.usage!.prompt_tokens > 0);
    assert.ok(r.usage!.completion_tokens > 0 && r.usage!.completion_tokens <= 24);
    assert.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + r.usage!.completion_tokens);
  });

  it("streams a chat completion that the SDK's own accumulator turns into the same shape as a non-streamed one", async () => {
    const runner = client.chat.completions.stream({
      model: MODEL,
      max_tokens: 30,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "Tell me about the river" }],
    });
    let deltaText = "";
    runner.on("content", (delta) => (deltaText += delta));
    const final = await runner.finalChatCompletion();
    assert.ok(deltaText.length > 0);
    assert.equal(final.choices[0]!.message.content, deltaText);
    assert.ok(final.usage && final.usage.completion_tokens > 0 && final.usage.completion_tokens <= 30);
  });

  it("answers a legacy completion, streamed and not, with text and usage", async () => {
    const r = await client.completions.create({ model: MODEL, prompt: "Once upon a time", max_tokens: 20 });
    assert.equal(r.object, "text_completion");
    assert.ok(r.choices[0]!.text.length > 0);
    assert.ok(r.usage!.completion_tokens > 0 && r.usage!.completion_tokens <= 20);

    const stream = await client.completions.create({
      model: MODEL,
      prompt: "Once upon a time",
      max_tokens: 20,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      assert.equal(chunk.object, "text_completion");
      text += chunk.choices[0]?.text ?? "";
      finish ??= chunk.choices[0]?.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.ok(text.length > 0);
    assert.ok(finish === "stop" || finish === "length");
    assert.ok(usage && usage.completion_tokens > 0 && usage.completion_tokens <= 20);
  });

  it("answers a non-streamed Response whose output_text matches its output message", async () => {
    const r = await client.responses.create({
      model: MODEL,
      instructions: "Be brief.",
      input: "Describe a garden",
      max_output_tokens: 64,
    });
    assert.equal(r.object, "response");
    assert.equal(r.status, "completed");
    assert.ok(r.output_text.length > 0, "the SDK's output_text helper finds the text");
    const message = r.output.find((o) => o.type === "message");
    assert.ok(message && message.type === "message");
    const part = message.content[0];
    assert.ok(part && part.type === "output_text");
    assert.equal(part.text, r.output_text);
    assert.ok(r.usage && r.usage.output_tokens > 0 && r.usage.output_tokens <= 30);
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
  });

  it("streams a Response in the Responses event order, with usage in response.completed", async () => {
    const stream = await client.responses.create({
      model: MODEL,
      input: "Describe the morning light",
      max_output_tokens: 64,
      stream: true,
    });
    const types: string[] = [];
    let deltas = "";
    let completed: OpenAI.Responses.Response | undefined;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === "response.output_text.delta") deltas += ev.delta;
      if (ev.type === "response.completed") completed = ev.response;
    }
    assert.equal(types[0], "response.created");
    assert.equal(types[1], "response.in_progress");
    const order = [
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ];
    let at = 1;
    for (const ty of order) {
      const i = types.indexOf(ty, at);
      assert.ok(i > at - 1, `${ty} after position ${at} in ${types.join(",")}`);
      at = i;
    }
    assert.equal(types.at(-1), "response.completed");
    assert.ok(deltas.length > 0);
    assert.ok(completed);
    assert.equal(completed.status, "completed");
    const msg = completed.output.find((o) => o.type === "message");
    assert.ok(msg && msg.type === "message" && msg.content[0]?.type === "output_text");
    assert.equal(msg.content[0].text, deltas, "the completed response holds exactly the streamed text");
    assert.ok(completed.usage && completed.usage.output_tokens > 0 && completed.usage.output_tokens <= 30);
  });

  it("marks a Response cut by max_output_tokens incomplete, streamed and not", async () => {
    const r = await client.responses.create({ model: MODEL, input: "Describe a stone", max_output_tokens: 4 });
    assert.equal(r.status, "incomplete");
    assert.equal(r.incomplete_details?.reason, "max_output_tokens");
    assert.equal(r.usage?.output_tokens, 4);
    assert.ok(r.output_text.length > 0);
    assert.equal((r.output.at(-1) as { status?: string } | undefined)?.status, "incomplete");

    const stream = await client.responses.create({
      model: MODEL,
      input: "Describe a stone",
      max_output_tokens: 4,
      stream: true,
    });
    let last: OpenAI.Responses.ResponseStreamEvent | undefined;
    for await (const ev of stream) last = ev;
    assert.ok(last && last.type === "response.incomplete");
    assert.equal(last.response.incomplete_details?.reason, "max_output_tokens");
    assert.equal(last.response.usage?.output_tokens, 4);
  });

  it("streams a chat tool call in OpenAI's delta shape and answers the tool result with text", async () => {
    t.macs[0]!.script({ kind: "tool_call" });
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: "user", content: "What is the weather in Paris?" },
    ];
    const stream = await client.chat.completions.create({
      model: MODEL,
      stream: true,
      max_tokens: 64,
      tools: [weatherTool],
      messages,
    });
    const calls = new Map<number, { id?: string; name?: string; args: string; deltas: number }>();
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice) continue;
      finish ??= choice.finish_reason;
      for (const tc of choice.delta.tool_calls ?? []) {
        assert.equal(typeof tc.index, "number", "every tool-call delta carries its index");
        let c = calls.get(tc.index);
        if (!c) {
          // The first delta of a call names it: id, type and function.name.
          assert.match(tc.id ?? "", /\S/);
          assert.equal(tc.type, "function");
          assert.equal(tc.function?.name, "get_weather");
          calls.set(tc.index, (c = { id: tc.id!, name: tc.function!.name!, args: "", deltas: 0 }));
        } else {
          assert.equal(tc.function?.name, undefined, "the name is not repeated on later deltas");
        }
        c.args += tc.function?.arguments ?? "";
        c.deltas++;
      }
    }
    assert.equal(finish, "tool_calls");
    assert.equal(calls.size, 1);
    const call = calls.get(0)!;
    assert.ok(call.deltas > 1, "arguments arrive as several fragments");
    const args = JSON.parse(call.args) as { city: unknown };
    assert.equal(typeof args.city, "string");

    messages.push({
      role: "assistant",
      content: null,
      tool_calls: [{ id: call.id!, type: "function", function: { name: call.name!, arguments: call.args } }],
    });
    messages.push({ role: "tool", tool_call_id: call.id!, content: JSON.stringify({ temperature_c: 18 }) });
    const second = await client.chat.completions.create({
      model: MODEL,
      max_tokens: 32,
      tools: [weatherTool],
      messages,
    });
    assert.equal((second.choices[0]!.message.tool_calls ?? []).length, 0);
    assert.ok((second.choices[0]!.message.content ?? "").length > 0);
    assert.notEqual(second.choices[0]!.finish_reason, "tool_calls");
  });

  it("calls the named tool when tool_choice requires it (no script: what the demo fleet does), and answers text with tool_choice none", async () => {
    const otherTool = {
      type: "function" as const,
      function: { name: "get_time", parameters: { type: "object", properties: { zone: { type: "string" } } } },
    };
    const tools = [weatherTool, otherTool];
    const messages = [{ role: "user" as const, content: "What time is it in Oslo?" }];
    const named = await client.chat.completions.create({
      model: MODEL,
      max_tokens: 64,
      tools,
      tool_choice: { type: "function", function: { name: "get_time" } },
      messages,
    });
    assert.equal(named.choices[0]!.finish_reason, "tool_calls");
    const call = named.choices[0]!.message.tool_calls?.[0];
    assert.ok(call && call.type === "function");
    assert.equal(call.function.name, "get_time");
    const required = await client.chat.completions.create({
      model: MODEL,
      max_tokens: 64,
      tools,
      tool_choice: "required",
      messages,
    });
    assert.equal(required.choices[0]!.finish_reason, "tool_calls");
    const none = await client.chat.completions.create({
      model: MODEL,
      max_tokens: 64,
      tools,
      tool_choice: "none",
      messages,
    });
    assert.equal((none.choices[0]!.message.tool_calls ?? []).length, 0);
  });

  it("returns a non-streamed chat tool call whose arguments parse as JSON", async () => {
    t.macs[0]!.script({ kind: "tool_call" });
    const r = await client.chat.completions.create({
      model: MODEL,
      max_tokens: 64,
      tools: [weatherTool],
      messages: [{ role: "user", content: "Weather in Oslo?" }],
    });
    const choice = r.choices[0]!;
    assert.equal(choice.finish_reason, "tool_calls");
    const tc = choice.message.tool_calls?.[0];
    assert.ok(tc && tc.type === "function");
    assert.equal(tc.function.name, "get_weather");
    assert.equal(typeof (JSON.parse(tc.function.arguments) as { city: unknown }).city, "string");
  });

  it("drives the SDK's own streaming runTools loop: the tool runs once with parsed arguments and the final answer is text", async () => {
    t.macs[0]!.script({ kind: "tool_call" });
    const seen: { city: string }[] = [];
    const runner = client.chat.completions.runTools({
      model: MODEL,
      stream: true,
      max_tokens: 64,
      messages: [{ role: "user", content: "What is the weather in Bergen?" }],
      tools: [
        {
          type: "function",
          function: {
            name: "get_weather",
            description: "Current weather for a city",
            parameters: weatherTool.function.parameters!,
            parse: (input: string) => JSON.parse(input) as { city: string },
            function: (args: { city: string }) => {
              seen.push(args);
              return { temperature_c: 12 };
            },
          },
        },
      ],
    });
    const final = await runner.finalContent();
    assert.equal(seen.length, 1);
    assert.equal(typeof seen[0]!.city, "string");
    assert.ok((final ?? "").length > 0);
    const roles = runner.messages.map((m) => m.role);
    assert.deepEqual(roles, ["user", "assistant", "tool", "assistant"]);
  });

  it("runs a Responses function-call round trip: function_call item, then function_call_output, then text", async () => {
    t.macs[0]!.script({ kind: "tool_call" });
    const tools: OpenAI.Responses.FunctionTool[] = [
      { type: "function", name: "get_weather", strict: false, parameters: weatherTool.function.parameters ?? null },
    ];
    const stream = await client.responses.create({
      model: MODEL,
      input: "Weather in Rome?",
      tools,
      max_output_tokens: 64,
      stream: true,
    });
    let argDeltas = "";
    let argsDone: string | undefined;
    let completed: OpenAI.Responses.Response | undefined;
    for await (const ev of stream) {
      if (ev.type === "response.function_call_arguments.delta") argDeltas += ev.delta;
      if (ev.type === "response.function_call_arguments.done") argsDone = ev.arguments;
      if (ev.type === "response.completed") completed = ev.response;
    }
    assert.ok(completed);
    const call = completed.output.find((o) => o.type === "function_call");
    assert.ok(call && call.type === "function_call");
    assert.equal(call.name, "get_weather");
    assert.match(call.call_id, /\S/);
    assert.equal(argsDone, argDeltas);
    assert.equal(call.arguments, argDeltas);
    assert.equal(typeof (JSON.parse(call.arguments) as { city: unknown }).city, "string");
    assert.ok(completed.usage && completed.usage.output_tokens > 0);

    const second = await client.responses.create({
      model: MODEL,
      tools,
      max_output_tokens: 32,
      input: [
        { role: "user", content: "Weather in Rome?" },
        { type: "function_call", call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: "function_call_output", call_id: call.call_id, output: JSON.stringify({ temperature_c: 21 }) },
      ],
    });
    assert.equal(second.status, "completed");
    assert.equal(second.output.filter((o) => o.type === "function_call").length, 0);
    assert.ok(second.output_text.length > 0);
  });
});
