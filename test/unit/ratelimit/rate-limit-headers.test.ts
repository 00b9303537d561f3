import assert from "node:assert/strict";
import { formatResetDuration, writeDimensionHeaders } from "../../../src/ratelimit/rate-limit-headers.js";

describe("rate-limit headers", () => {
  describe("formatResetDuration (OpenAI / Go duration strings)", () => {
    const cases: Array<[number, string]> = [
      [0, "0s"],
      [-5, "0s"],
      [0.2, "1ms"],
      [20, "20ms"],
      [999, "999ms"],
      [1000, "1s"],
      [1500, "1.5s"],
      [61_250, "1m1.25s"],
      [360_000, "6m0s"],
      [3_723_000, "1h2m3s"],
    ];
    for (const [ms, want] of cases)
      it(`formats ${ms} ms as ${want}`, () => assert.equal(formatResetDuration(ms), want));
  });

  it("writes limit, remaining and reset from a bucket, account-wide under a process share", () => {
    const h: Record<string, string> = {};
    const T0 = 1_000_000;
    // A quarter share of a 600/min, burst 200 limit: 2.5/s, burst 50; 10 left, 16 s to full.
    writeDimensionHeaders(h, "requests", { ratePerSec: 2.5, burst: 50, level: 10, updatedMs: T0 }, T0, 0.25);
    assert.deepEqual(h, {
      "x-ratelimit-limit-requests": "600",
      "x-ratelimit-remaining-requests": "40",
      "x-ratelimit-reset-requests": "16s",
    });
  });

  it("shows zero remaining while in debt and writes nothing for an unlimited bucket", () => {
    const h: Record<string, string> = {};
    writeDimensionHeaders(h, "output_tokens", { ratePerSec: 100, burst: 1000, level: -500, updatedMs: 0 }, 0, 1);
    assert.equal(h["x-ratelimit-remaining-output-tokens"], "0");
    assert.equal(h["x-ratelimit-reset-output-tokens"], "15s");
    const u: Record<string, string> = {};
    writeDimensionHeaders(u, "input_tokens", { ratePerSec: 0, burst: 0, level: 0, updatedMs: 0 }, 0, 1);
    assert.deepEqual(u, {});
  });
});
