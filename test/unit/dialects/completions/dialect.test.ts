import assert from "node:assert/strict";
import { completionsDialect } from "../../../../src/dialects/completions/dialect.js";
import { RAW_PROMPT_FIELD } from "../../../../src/dialects/completions/parse.js";
import { CoordinatorError } from "../../../../src/errors/coordinator-error.js";
import { ctx, meta, openaiEvents } from "../sdk-streams.js";

const usage = { promptTokens: 5, completionTokens: 2, reasoningTokens: 0 };

describe("legacy completions dialect", () => {
  it("translates the prompt into one user message flagged as a raw prompt", () => {
    const req = completionsDialect.parse(
      { model: "m", prompt: ["Once upon"], max_tokens: 8, stop: ["\n"], user: "u" },
      ctx,
    );
    assert.deepEqual(req.body, {
      model: "m",
      messages: [{ role: "user", content: "Once upon" }],
      [RAW_PROMPT_FIELD]: true,
      stop: ["\n"],
      user: "u",
      max_tokens: 8,
      stream: false,
    });
    assert.equal(req.affinityKey, "u");
  });

  const cases: Array<[string, unknown, string]> = [
    ["a missing prompt", { model: "m" }, "prompt"],
    ["a batch of prompts", { model: "m", prompt: ["a", "b"] }, "prompt"],
    ["token-array prompts", { model: "m", prompt: [1, 2, 3] }, "prompt"],
    ["n > 1", { model: "m", prompt: "a", n: 3 }, "n"],
    ["echo", { model: "m", prompt: "a", echo: true }, "echo"],
    ["best_of > 1", { model: "m", prompt: "a", best_of: 2 }, "best_of"],
    ["logprobs", { model: "m", prompt: "a", logprobs: 2 }, "logprobs"],
  ];
  for (const [what, body, param] of cases) {
    it(`rejects ${what} with a 400 naming ${param}`, () => {
      assert.throws(
        () => completionsDialect.parse(body, ctx),
        (e: unknown) => e instanceof CoordinatorError && e.code === "invalid_request" && e.param === param,
      );
    });
  }

  it("streams text_completion chunks, a finish chunk, a usage chunk and [DONE], readable by the openai SDK", async () => {
    const r = completionsDialect.streamRenderer(meta({ includeUsage: true }));
    const text =
      r.start() +
      r.deltas([
        { kind: "role", role: "assistant" },
        { kind: "reasoning", text: "hidden" },
      ]) +
      r.deltas([
        { kind: "content", text: " a" },
        { kind: "content", text: " time" },
      ]) +
      r.finish("length", usage);
    assert.ok(text.endsWith("data: [DONE]\n\n"));
    const items = await openaiEvents(text);
    assert.equal(items.length, 3);
    assert.deepEqual(items[0], {
      id: "cmpl-req_1",
      object: "text_completion",
      created: 1_700_000_000,
      model: "qwen3-8b",
      choices: [{ text: " a time", index: 0, logprobs: null, finish_reason: null }],
    });
    assert.equal(items[1]!.choices[0].finish_reason, "length");
    assert.deepEqual(items[2]!.choices, []);
    assert.equal(items[2]!.usage.total_tokens, 7);
  });

  it("returns a text_completion object when not streaming", () => {
    const acc = completionsDialect.accumulator(meta());
    acc.deltas([
      { kind: "content", text: "Hello" },
      { kind: "tool_call", index: 0, name: "x" },
    ]);
    const out = acc.finish("tool_calls", usage) as any;
    assert.equal(out.object, "text_completion");
    assert.equal(out.choices[0].text, "Hello");
    assert.equal(out.choices[0].finish_reason, "stop");
    assert.equal(out.usage.prompt_tokens, 5);
  });

  it("raises an in-band error through the openai SDK", async () => {
    const r = completionsDialect.streamRenderer(meta());
    const text = r.deltas([{ kind: "content", text: "x" }]) + r.error(new CoordinatorError("provider_failed", "gone"));
    await assert.rejects(openaiEvents(text), /gone/);
  });
});
