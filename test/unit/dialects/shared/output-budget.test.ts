import assert from "node:assert/strict";
import { anthropicMessagesDialect } from "../../../../src/dialects/anthropic/dialect.js";
import { chatCompletionsDialect } from "../../../../src/dialects/chat/dialect.js";
import { completionsDialect } from "../../../../src/dialects/completions/dialect.js";
import { responsesDialect } from "../../../../src/dialects/responses/dialect.js";
import { MAX_OUTPUT_TOKENS_PARAM } from "../../../../src/dialects/shared/request-fields.js";
import type { Dialect } from "../../../../src/dialects/shared/types.js";
import { CoordinatorError } from "../../../../src/errors/coordinator-error.js";
import { ctx } from "../sdk-streams.js";

// Each dialect's output-budget field, in a body that is otherwise valid.
const dialects: Array<[string, Dialect, string, (n: number) => unknown]> = [
  [
    "chat",
    chatCompletionsDialect,
    "max_tokens",
    (n) => ({ model: "m", messages: [{ role: "user", content: "x" }], max_tokens: n }),
  ],
  [
    "chat",
    chatCompletionsDialect,
    "max_completion_tokens",
    (n) => ({ model: "m", messages: [{ role: "user", content: "x" }], max_completion_tokens: n }),
  ],
  ["completions", completionsDialect, "max_tokens", (n) => ({ model: "m", prompt: "x", max_tokens: n })],
  ["responses", responsesDialect, "max_output_tokens", (n) => ({ model: "m", input: "x", max_output_tokens: n })],
  [
    "anthropic",
    anthropicMessagesDialect,
    "max_tokens",
    (n) => ({ model: "m", messages: [{ role: "user", content: "x" }], max_tokens: n }),
  ],
];

describe("output budget bound (MAX_OUTPUT_TOKENS_PARAM)", () => {
  for (const [name, dialect, field, body] of dialects) {
    it(`${name}: ${field} at the bound is accepted, one above is a 400 naming ${field}`, () => {
      const ok = dialect.parse(body(MAX_OUTPUT_TOKENS_PARAM), ctx);
      assert.equal(ok.traits.maxTokens, MAX_OUTPUT_TOKENS_PARAM);
      assert.throws(
        () => dialect.parse(body(MAX_OUTPUT_TOKENS_PARAM + 1), ctx),
        (e: unknown) =>
          e instanceof CoordinatorError &&
          e.status === 400 &&
          e.param === field &&
          e.message.includes(`at most ${MAX_OUTPUT_TOKENS_PARAM}`),
      );
    });
  }
});
