/**
 * Valid request bodies of each consumer dialect, as fast-check arbitraries: the starting points the fuzz
 * mutates. Shapes follow the parsers in src/dialects (chat/, completions/, responses/ and anthropic/parse.ts).
 * Most name the model the simulated Macs serve, with small output budgets so a valid
 * case is answered in milliseconds; some name a catalog model nobody serves (queued, then 429: the fuzz target
 * sets a short QUEUE_WAIT_MS) or an unknown one (404).
 */
import fc from "fast-check";
import type { JsonTree } from "./json-tree.js";

/** The model the fuzz target's Macs serve. */
export const SERVED_MODEL = "gpt-oss-20b";

const model = fc.oneof(
  { weight: 20, arbitrary: fc.constant(SERVED_MODEL) },
  { weight: 1, arbitrary: fc.constantFrom("no-such-model", "gpt-4o") },
  // In the catalog but served by no connected Mac: queued for QUEUE_WAIT_MS (a Mac may connect), then 429.
  { weight: 1, arbitrary: fc.constantFrom("qwen3-8b", "gemma-4-26b") },
);
const text = fc.oneof(
  fc.constantFrom("hi", "Say hello.", "What is 2+2?", "Tell me a joke about Macs."),
  fc.string({ minLength: 1, maxLength: 40 }),
);
const maxTokens = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 1, max: 32 }) },
  { weight: 1, arbitrary: fc.constantFrom(4_096, 100_000_000) },
);
const user = fc.string({ minLength: 1, maxLength: 32 });
const toolName = fc.constantFrom("get_weather", "lookup", "f");
const schema = fc.constantFrom<JsonTree>(
  { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  { type: "object" },
  {},
);
/** A tiny PNG as a data URL, an https URL, and a link-local one (refused or passed on: never a 5xx). */
const imageUrl = fc.constantFrom(
  "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
  "https://example.com/cat.png",
  "http://169.254.169.254/latest/meta-data/",
);
const temperature = (max: number) => fc.double({ min: 0, max, noNaN: true });

/** Keeps `stream_options` only where it is allowed (with `stream: true`). */
function streamConsistent<T extends { stream?: boolean; stream_options?: unknown }>(b: T): T {
  if (b.stream !== true) delete b.stream_options;
  return b;
}

/** Makes `tool_choice` name a declared tool (or drops it). */
function toolChoiceConsistent<
  T extends { tools?: { name?: string; function?: { name: string } }[]; tool_choice?: unknown },
>(b: T, named: (name: string) => unknown): T {
  if (typeof b.tool_choice === "object" && b.tool_choice !== null) {
    const first = b.tools?.[0];
    const name = first?.function?.name ?? first?.name;
    if (name === undefined) delete b.tool_choice;
    else b.tool_choice = named(name);
  }
  return b;
}

const chatTool = fc.record({
  type: fc.constant("function"),
  function: fc.record({ name: toolName, description: text, parameters: schema }, { requiredKeys: ["name"] }),
});
const chatMessage = fc.oneof(
  fc.record({ role: fc.constantFrom("system", "developer"), content: text }),
  fc.record({ role: fc.constant("user"), content: text }),
  fc.record({
    role: fc.constant("user"),
    content: fc.array(
      fc.oneof(
        { weight: 4, arbitrary: fc.record({ type: fc.constant("text"), text }) },
        {
          weight: 1,
          arbitrary: fc.record({ type: fc.constant("image_url"), image_url: fc.record({ url: imageUrl }) }),
        },
      ),
      { minLength: 1, maxLength: 3 },
    ),
  }),
  fc.record({ role: fc.constant("assistant"), content: text }),
  fc.record({
    role: fc.constant("assistant"),
    content: fc.constant(null),
    tool_calls: fc.constant([
      { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
    ]),
  }),
  fc.record({ role: fc.constant("tool"), tool_call_id: fc.constant("call_1"), content: text }),
);

/** POST /v1/chat/completions. */
export const chatBody: fc.Arbitrary<JsonTree> = fc
  .record(
    {
      model,
      messages: fc
        .tuple(fc.array(chatMessage, { maxLength: 3 }), text)
        .map(([history, last]) => [...history, { role: "user", content: last }]),
      max_tokens: maxTokens,
      max_completion_tokens: maxTokens,
      stream: fc.boolean(),
      stream_options: fc.record({ include_usage: fc.boolean() }),
      temperature: temperature(2),
      top_p: temperature(1),
      presence_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
      frequency_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
      seed: fc.integer(),
      stop: fc.oneof(fc.constant("\n"), fc.array(fc.constantFrom("END", "\n\n"), { maxLength: 2 })),
      user,
      prompt_cache_key: user,
      n: fc.constant(1),
      reasoning_effort: fc.constantFrom("minimal", "low", "medium", "high"),
      parallel_tool_calls: fc.boolean(),
      response_format: fc.constantFrom<JsonTree>(
        { type: "text" },
        { type: "json_object" },
        { type: "json_schema", json_schema: { name: "answer", schema: { type: "object" }, strict: true } },
      ),
      tools: fc.array(chatTool, { maxLength: 3 }),
      tool_choice: fc.constantFrom<JsonTree>("auto", "none", "required", { type: "function", function: { name: "?" } }),
    },
    { requiredKeys: ["model", "messages"] },
  )
  .map((b) =>
    toolChoiceConsistent(streamConsistent(b), (name) => ({ type: "function", function: { name } })),
  ) as fc.Arbitrary<JsonTree>;

/** POST /v1/completions. */
export const completionsBody: fc.Arbitrary<JsonTree> = fc
  .record(
    {
      model,
      prompt: fc.oneof(
        text,
        text.map((t) => [t]),
      ),
      max_tokens: maxTokens,
      stream: fc.boolean(),
      stream_options: fc.record({ include_usage: fc.boolean() }),
      temperature: temperature(2),
      top_p: temperature(1),
      presence_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
      seed: fc.integer(),
      stop: fc.constantFrom<JsonTree>("\n", ["END"]),
      user,
      n: fc.constant(1),
      best_of: fc.constant(1),
      echo: fc.constant(false),
      suffix: fc.constant(""),
    },
    { requiredKeys: ["model", "prompt"] },
  )
  .map(streamConsistent) as fc.Arbitrary<JsonTree>;

const responsesItem = fc.oneof(
  fc.record({ role: fc.constantFrom("user", "assistant", "system", "developer"), content: text }),
  fc.record({
    type: fc.constant("message"),
    role: fc.constant("user"),
    content: fc.array(
      fc.oneof(
        fc.record({ type: fc.constant("input_text"), text }),
        fc.record({ type: fc.constant("input_image"), image_url: imageUrl }),
      ),
      { minLength: 1, maxLength: 2 },
    ),
  }),
  fc.record({
    type: fc.constant("message"),
    role: fc.constant("assistant"),
    content: fc.array(fc.record({ type: fc.constant("output_text"), text }), { minLength: 1, maxLength: 2 }),
  }),
  fc.constant({ type: "function_call", call_id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' }),
  fc.record({ type: fc.constant("function_call_output"), call_id: fc.constant("call_1"), output: text }),
  fc.constant({ type: "reasoning", summary: [] }),
);

/** POST /v1/responses. */
export const responsesBody: fc.Arbitrary<JsonTree> = fc
  .record(
    {
      model,
      input: fc.oneof(
        text,
        fc
          .tuple(fc.array(responsesItem, { maxLength: 3 }), text)
          .map(([items, last]) => [...items, { role: "user", content: last }]),
      ),
      instructions: text,
      max_output_tokens: maxTokens,
      stream: fc.boolean(),
      temperature: temperature(2),
      top_p: temperature(1),
      user,
      safety_identifier: user,
      prompt_cache_key: user,
      parallel_tool_calls: fc.boolean(),
      reasoning: fc.record({ effort: fc.constantFrom("low", "medium", "high") }),
      text: fc.constantFrom<JsonTree>(
        { format: { type: "text" } },
        { format: { type: "json_object" } },
        { format: { type: "json_schema", name: "answer", schema: { type: "object" } } },
      ),
      tools: fc.array(
        fc.record(
          {
            type: fc.constant("function"),
            name: toolName,
            description: text,
            parameters: schema,
            strict: fc.boolean(),
          },
          { requiredKeys: ["type", "name"] },
        ),
        { maxLength: 3 },
      ),
      tool_choice: fc.constantFrom<JsonTree>("auto", "none", "required", { type: "function", name: "?" }),
      store: fc.boolean(),
    },
    { requiredKeys: ["model", "input"] },
  )
  .map((b) => toolChoiceConsistent(b, (name) => ({ type: "function", name }))) as fc.Arbitrary<JsonTree>;

const anthropicUserBlock = fc.oneof(
  { weight: 4, arbitrary: fc.record({ type: fc.constant("text"), text }) },
  {
    weight: 1,
    arbitrary: fc.constant({
      type: "image",
      source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" },
    }),
  },
  {
    weight: 1,
    arbitrary: imageUrl
      .filter((u) => !u.startsWith("data:"))
      .map((url) => ({ type: "image", source: { type: "url", url } })),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("tool_result"),
      tool_use_id: fc.constant("toolu_1"),
      content: fc.oneof(text, fc.constant([{ type: "text", text: "ok" }])),
      is_error: fc.boolean(),
    }),
  },
);
const anthropicMessage = fc.oneof(
  fc.record({ role: fc.constantFrom("user", "assistant"), content: text }),
  fc.record({ role: fc.constant("user"), content: fc.array(anthropicUserBlock, { minLength: 1, maxLength: 3 }) }),
  fc.record({
    role: fc.constant("assistant"),
    content: fc.constant([
      { type: "thinking", thinking: "hmm", signature: "x" },
      { type: "text", text: "Let me check." },
      { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
    ]),
  }),
);
const anthropicFields = {
  model,
  messages: fc
    .tuple(fc.array(anthropicMessage, { maxLength: 3 }), text)
    .map(([history, last]) => [...history, { role: "user", content: last }]),
  system: fc.oneof(text, fc.array(fc.record({ type: fc.constant("text"), text }), { minLength: 1, maxLength: 2 })),
  tools: fc.array(
    fc.record(
      { name: toolName, description: text, input_schema: schema, type: fc.constant("custom") },
      { requiredKeys: ["name", "input_schema"] },
    ),
    { maxLength: 3 },
  ),
  tool_choice: fc.constantFrom<JsonTree>(
    { type: "auto" },
    { type: "any" },
    { type: "none" },
    { type: "tool", name: "?" },
    { type: "auto", disable_parallel_tool_use: true },
  ),
  stop_sequences: fc.array(fc.constantFrom("END", "\n\nHuman:"), { maxLength: 2 }),
  temperature: temperature(1),
  top_p: temperature(1),
  top_k: fc.integer({ min: 1, max: 100 }),
  metadata: fc.record({ user_id: user }),
};
/** Anthropic `tool_choice` {type:"tool"} names a declared tool, or is dropped. */
function anthropicToolChoice<T extends { tools?: { name: string }[]; tool_choice?: unknown }>(b: T): T {
  const tc = b.tool_choice as { type?: string } | undefined;
  if (tc?.type === "tool") {
    const name = b.tools?.[0]?.name;
    if (name === undefined) delete b.tool_choice;
    else b.tool_choice = { type: "tool", name };
  }
  return b;
}

/** POST /v1/messages (max_tokens is required, as Anthropic requires it). */
export const messagesBody: fc.Arbitrary<JsonTree> = fc
  .record(
    { ...anthropicFields, max_tokens: maxTokens, stream: fc.boolean() },
    { requiredKeys: ["model", "messages", "max_tokens"] },
  )
  .map(anthropicToolChoice) as fc.Arbitrary<JsonTree>;

/** POST /v1/messages/count_tokens (a Messages body without max_tokens or streaming). */
export const countTokensBody: fc.Arbitrary<JsonTree> = fc
  .record(anthropicFields, { requiredKeys: ["model", "messages"] })
  .map(anthropicToolChoice) as fc.Arbitrary<JsonTree>;
