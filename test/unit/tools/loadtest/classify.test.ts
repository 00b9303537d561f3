import assert from "node:assert/strict";
import {
  classifyFailure,
  classificationRules,
  errorClasses,
  parseErrorBody,
  type ErrorClass,
  type Failure,
} from "../../../../src/tools/loadtest/classify.js";

const cases: [string, Failure, ErrorClass][] = [
  [
    "503 service_unavailable",
    { kind: "http", status: 503, code: "service_unavailable", message: "service temporarily unavailable" },
    "billing_503",
  ],
  [
    "503 mentioning the ledger",
    { kind: "http", status: 503, code: "unavailable", message: "ledger unavailable, try again" },
    "billing_503",
  ],
  [
    "503 mentioning the balance",
    { kind: "http", status: 503, code: null, message: "could not reserve balance" },
    "billing_503",
  ],
  [
    "429 output_tokens rate limit",
    { kind: "http", status: 429, code: "rate_limit_exceeded", message: "output_tokens rate limit exceeded" },
    "ratelimit_429",
  ],
  [
    "429 requests rate limit",
    { kind: "http", status: 429, code: null, message: "requests rate limit exceeded" },
    "ratelimit_429",
  ],
  [
    "429 input_tokens rate limit",
    { kind: "http", status: 429, code: "rate_limit_exceeded", message: "input_tokens per minute rate limit exceeded" },
    "ratelimit_429",
  ],
  [
    "429 capacity_exhausted",
    { kind: "http", status: 429, code: "capacity_exhausted", message: "busy" },
    "capacity_429",
  ],
  [
    "429 all providers at capacity",
    { kind: "http", status: 429, code: "rate_limit_exceeded", message: "all providers at capacity" },
    "capacity_429",
  ],
  [
    "429 queue timeout",
    { kind: "http", status: 429, code: "queue_timeout", message: "timed out in queue" },
    "capacity_429",
  ],
  [
    "429 pool_exhausted",
    { kind: "http", status: 429, code: "pool_exhausted", message: "output_tokens rate limit pool exhausted" },
    "pool_exhausted_429",
  ],
  [
    "429 plain rate_limit_exceeded",
    { kind: "http", status: 429, code: "rate_limit_exceeded", message: "slow down" },
    "ratelimit_429",
  ],
  ["unknown 429", { kind: "http", status: 429, code: null, message: "nope" }, "http_4xx"],
  [
    "503 model_unavailable",
    { kind: "http", status: 503, code: "model_unavailable", message: "no provider" },
    "dispatch_503",
  ],
  [
    "502 provider_error",
    { kind: "http", status: 502, code: "provider_error", message: "inference failed after 3 attempts" },
    "dispatch_503",
  ],
  ["500 internal", { kind: "http", status: 500, code: "internal", message: "internal error" }, "dispatch_503"],
  ["504 gateway timeout", { kind: "http", status: 504 }, "dispatch_503"],
  ["in-band error", { kind: "in_band", code: "provider_failed", message: "provider disconnected" }, "in_band_error"],
  ["client timeout", { kind: "timeout" }, "client_timeout"],
  ["400 invalid request", { kind: "http", status: 400, code: "invalid_request", message: "bad" }, "http_4xx"],
  ["401 unauthenticated", { kind: "http", status: 401 }, "http_4xx"],
  [
    "402 insufficient quota",
    { kind: "http", status: 402, code: "insufficient_quota", message: "balance too low" },
    "http_4xx",
  ],
  ["connection refused", { kind: "network", message: "ECONNREFUSED" }, "network"],
];

describe("loadtest classifyFailure", () => {
  for (const [name, failure, expected] of cases) {
    it(`classifies ${name} as ${expected}`, () => {
      assert.equal(classifyFailure(failure), expected);
    });
  }

  it("has a rule for every class except the http_4xx fallback", () => {
    const covered = new Set(classificationRules.map((r) => r.errorClass));
    assert.deepEqual(
      errorClasses.filter((c) => !covered.has(c)),
      ["http_4xx"],
    );
  });

  it("reads code, type and message from an OpenAI error body", () => {
    assert.deepEqual(parseErrorBody('{"error":{"message":"m","type":"t","code":"c"}}'), {
      code: "c",
      type: "t",
      message: "m",
    });
    assert.deepEqual(parseErrorBody('{"error":{"message":"m","code":429}}'), { code: "429", type: null, message: "m" });
    assert.deepEqual(parseErrorBody('{"error":"plain"}'), { code: null, type: null, message: "plain" });
  });

  it("keeps a bounded excerpt of a non-JSON body", () => {
    assert.deepEqual(parseErrorBody("<html>bad gateway</html>"), {
      code: null,
      type: null,
      message: "<html>bad gateway</html>",
    });
    assert.equal(parseErrorBody("x".repeat(1000)).message!.length, 300);
    assert.deepEqual(parseErrorBody(""), { code: null, type: null, message: null });
  });
});
