import assert from "node:assert/strict";
import { anthropicMessagesDialect } from "../../../../src/dialects/anthropic/dialect.js";
import { chatCompletionsDialect } from "../../../../src/dialects/chat/dialect.js";
import { responsesDialect } from "../../../../src/dialects/responses/dialect.js";
import { MAX_STOP_SEQUENCE_CHARS, MAX_STOP_SEQUENCES } from "../../../../src/dialects/shared/request-fields.js";
import { CoordinatorError } from "../../../../src/errors/coordinator-error.js";
import { ctx } from "../sdk-streams.js";

const refused = (param: string, message: RegExp) => (e: unknown) =>
  e instanceof CoordinatorError && e.code === "invalid_request" && e.param === param && message.test(e.message);

const stops = (n: number, chars = 3) => Array.from({ length: n }, (_, i) => `${i}`.padEnd(chars, "x"));

describe("stop sequences and reasoning effort, bounded in every dialect", () => {
  const chat = (stop: unknown) =>
    chatCompletionsDialect.parse({ model: "m", messages: [{ role: "user", content: "hi" }], stop }, ctx);
  const anthropic = (stop_sequences: unknown) =>
    anthropicMessagesDialect.parse(
      { model: "m", max_tokens: 8, messages: [{ role: "user", content: "hi" }], stop_sequences },
      ctx,
    );

  it(`takes ${MAX_STOP_SEQUENCES} sequences of ${MAX_STOP_SEQUENCE_CHARS} characters and refuses one more of either`, () => {
    assert.deepEqual(chat(stops(MAX_STOP_SEQUENCES)).body.stop, stops(MAX_STOP_SEQUENCES));
    assert.deepEqual(anthropic(stops(MAX_STOP_SEQUENCES)).body.stop, stops(MAX_STOP_SEQUENCES));
    assert.throws(() => chat(stops(MAX_STOP_SEQUENCES + 1)), refused("stop", /holds 17 sequences; at most 16/));
    assert.throws(
      () => anthropic(stops(MAX_STOP_SEQUENCES + 1)),
      refused("stop_sequences", /holds 17 sequences; at most 16/),
    );
    assert.deepEqual(chat(stops(1, MAX_STOP_SEQUENCE_CHARS)).body.stop, stops(1, MAX_STOP_SEQUENCE_CHARS));
    assert.throws(() => chat(stops(1, MAX_STOP_SEQUENCE_CHARS + 1)), refused("stop", /at most 256 characters/));
    assert.throws(
      () => anthropic(stops(1, MAX_STOP_SEQUENCE_CHARS + 1)),
      refused("stop_sequences", /at most 256 characters/),
    );
  });

  it("refuses an empty stop sequence in Anthropic as in chat, and a bare string where Anthropic wants an array", () => {
    assert.throws(() => chat([""]), refused("stop", /non-empty strings/));
    assert.throws(() => anthropic([""]), refused("stop_sequences", /array of non-empty strings/));
    assert.throws(() => anthropic("END"), refused("stop_sequences", /array of non-empty strings/));
  });

  it("checks Responses' reasoning.effort like chat's reasoning_effort", () => {
    const responses = (effort: unknown) =>
      responsesDialect.parse({ model: "m", input: "hi", reasoning: { effort } }, ctx);
    for (const effort of ["none", "minimal", "low", "medium", "high", "xhigh"])
      assert.equal(responses(effort).body.reasoning_effort, effort);
    assert.throws(() => responses("x".repeat(10_000)), refused("reasoning.effort", /unknown reasoning\.effort/));
    assert.throws(
      () =>
        chatCompletionsDialect.parse(
          { model: "m", messages: [{ role: "user", content: "hi" }], reasoning_effort: "max" },
          ctx,
        ),
      refused("reasoning_effort", /one of none, minimal, low, medium, high, xhigh/),
    );
  });
});
