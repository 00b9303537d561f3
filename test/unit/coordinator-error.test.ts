import assert from "node:assert/strict";
import { CoordinatorError, errorHeaders, toAnthropicError, toOpenAIError } from "../../src/errors/coordinator-error.js";

describe("CoordinatorError", () => {
  it("maps to the OpenAI error shape with status, type and wire code", () => {
    const e = new CoordinatorError("rate_limited", "output_tokens rate limit exceeded", {
      wireCode: "rate_limit_exceeded",
      retryAfterS: 2.2,
    });
    assert.equal(e.status, 429);
    assert.deepEqual(toOpenAIError(e), {
      error: {
        message: "output_tokens rate limit exceeded",
        type: "rate_limit_error",
        code: "rate_limit_exceeded",
        param: null,
      },
    });
    assert.equal(errorHeaders(e)["retry-after"], "3");
  });

  it("maps to the Anthropic error shape", () => {
    const e = new CoordinatorError("model_not_found", "no such model", { param: "model" });
    assert.equal(e.status, 404);
    assert.deepEqual(toAnthropicError(e), {
      type: "error",
      error: { type: "not_found_error", message: "no such model" },
    });
  });

  it("hides the message of unexpected errors", () => {
    const e = CoordinatorError.from(new Error("pg: connection refused at 10.0.0.1"));
    assert.equal(e.code, "internal");
    assert.equal(e.message, "internal error");
  });
});
