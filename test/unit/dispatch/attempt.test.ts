import assert from "node:assert/strict";
import { StreamedOutput } from "../../../src/usage/streamed-output.js";
import { clampUsage, partialUsage, timerVerdict, type Attempt } from "../../../src/dispatch/attempt.js";

const base: Attempt = {
  providerId: "p",
  accountId: "a",
  version: "0.7.0",
  backup: false,
  phase: "waiting",
  startedAtMs: 0,
  deadlineAtMs: 5_000,
  contentChars: 0,
  output: new StreamedOutput(),
};
const o = { inferenceTimeoutMs: 600_000, preambleContentTimeoutMs: 90_000 };

describe("attempt timer rules", () => {
  const table: [string, Partial<Attempt>, boolean, number, ReturnType<typeof timerVerdict>][] = [
    ["silent past the deadline → fail over", {}, false, 5_000, { kind: "first_token_timeout" }],
    [
      "accepted (loading) → wait up to the inference timeout",
      { acceptedAtMs: 1_000 },
      false,
      5_000,
      { kind: "extend", untilMs: 601_000 },
    ],
    [
      "accepted, but past the inference timeout → fail over",
      { acceptedAtMs: 1_000 },
      false,
      601_000,
      { kind: "first_token_timeout" },
    ],
    [
      "preamble only → the preamble budget from the preamble",
      { preambleAtMs: 4_000 },
      false,
      5_000,
      { kind: "extend", untilMs: 94_000 },
    ],
    ["preamble budget spent → fail over", { preambleAtMs: 4_000 }, false, 94_000, { kind: "first_token_timeout" }],
    ["committed and silent → a post-commit stall", { phase: "streaming" }, true, 130_000, { kind: "stalled" }],
  ];
  for (const [name, a, committed, now, want] of table) {
    it(name, () => assert.deepEqual(timerVerdict({ ...base, ...a }, committed, now, o), want));
  }

  it("bills a partial answer from what was streamed, and clamps provider usage to the request's budget", () => {
    assert.deepEqual(partialUsage({ ...base, contentChars: 41 }, 12), {
      promptTokens: 12,
      completionTokens: 11,
      reasoningTokens: 0,
    });
    assert.deepEqual(clampUsage({ promptTokens: 5, completionTokens: 900, reasoningTokens: 950 }, 100), {
      promptTokens: 5,
      completionTokens: 100,
      reasoningTokens: 100,
    });
  });
});
