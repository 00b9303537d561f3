import assert from "node:assert/strict";
import type { ProviderErrorReason } from "../../../src/inference/types.js";
import {
  classifyProviderError,
  isLoadRefusal,
  outcomeKindOf,
  type ErrorClass,
} from "../../../src/health/classify-provider-error.js";

describe("classifyProviderError", () => {
  const table: Array<[number, ProviderErrorReason, string, ErrorClass]> = [
    // Typed reasons win.
    [400, "context_overflow", "prompt too long", "deterministic"],
    [500, "context_overflow", "", "deterministic"],
    [400, "invalid_request", "bad tool schema", "deterministic"],
    [503, "capacity", "no kv budget", "capacity"],
    [503, "insufficient_memory", "insufficient memory to load", "capacity"],
    [500, "model_load_failed", "model load failed", "capacity"],
    [503, "draining", "provider draining for update", "capacity"],
    [499, "cancelled", "cancelled", "capacity"],
    [500, "template", "jinja: undefined", "sickness"],
    [503, "internal", "metal device lost", "sickness"],
    // Unspecified reason: status code, then message patterns.
    [500, "unspecified", "internal server error", "sickness"],
    [502, "unspecified", "provider disconnected", "sickness"],
    [504, "unspecified", "no first token before deadline", "sickness"],
    [0, "unspecified", "stream reset", "sickness"],
    [503, "unspecified", "service unavailable", "capacity"],
    [429, "unspecified", "too many requests", "capacity"],
    [500, "unspecified", "insufficient memory for KV cache", "capacity"],
    [500, "unspecified", "request exceeds the model's context length", "deterministic"],
    [500, "unspecified", "batch token budget exceeded", "deterministic"],
    [400, "unspecified", "bad request", "deterministic"],
    [413, "unspecified", "payload too large", "deterministic"],
    [422, "unspecified", "unprocessable", "deterministic"],
    [404, "unspecified", "model not found on this provider", "client_error"],
    [401, "unspecified", "unauthorized", "client_error"],
  ];
  for (const [statusCode, reason, message, expected] of table) {
    it(`classifies ${statusCode}/${reason} "${message}" as ${expected}`, () => {
      assert.equal(classifyProviderError({ statusCode, reason, message }), expected);
    });
  }

  it("detects load refusals by reason, or by message when the reason is unspecified", () => {
    assert.equal(isLoadRefusal({ statusCode: 503, reason: "insufficient_memory", message: "" }), true);
    assert.equal(isLoadRefusal({ statusCode: 500, reason: "model_load_failed", message: "" }), true);
    assert.equal(
      isLoadRefusal({ statusCode: 500, reason: "unspecified", message: "Model load failed: bad weights" }),
      true,
    );
    assert.equal(isLoadRefusal({ statusCode: 503, reason: "capacity", message: "insufficient memory" }), false);
    assert.equal(isLoadRefusal({ statusCode: 500, reason: "internal", message: "boom" }), false);
  });

  it("maps classes to health outcomes, deterministic errors counting as client errors", () => {
    assert.equal(outcomeKindOf("sickness"), "sickness");
    assert.equal(outcomeKindOf("capacity"), "capacity");
    assert.equal(outcomeKindOf("client_error"), "client_error");
    assert.equal(outcomeKindOf("deterministic"), "client_error");
  });
});
