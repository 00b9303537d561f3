import assert from "node:assert/strict";
import {
  MIN_DECODE_SAMPLE_MS,
  MIN_DECODE_SAMPLE_TOKENS,
  MIN_PREFILL_SAMPLE_TOKENS,
  RATE_CONCURRENCY_LAW_K,
  RATE_EWMA_ALPHA,
  foldRates,
  rateSamples,
  type RateObservation,
} from "../../../src/registry/observed-rates.js";
import type { ModelRates } from "../../../src/registry/types.js";

const obs = (over: Partial<RateObservation> = {}): RateObservation => ({
  requestId: "r1",
  promptTokens: 1000,
  completionTokens: 500,
  ttftMs: 500,
  decodeMs: 10_000,
  ...over,
});
const alone = { otherStreamsOnModel: 0, otherRequestsOnProvider: 0, promptTokensAhead: undefined };
const fresh: ModelRates = {
  decodeTpsCeiling: 400,
  prefillTpsCeiling: 16_000,
  measuredDecodeTps: undefined,
  measuredPrefillTps: undefined,
};

describe("observed rates: samples", () => {
  it("measures decode as completion tokens over the time after first content, and prefill as prompt over TTFT", () => {
    assert.deepEqual(rateSamples(obs(), alone), { decodeTps: 50, prefillTps: 2000 });
  });

  it("scales a decode sample to a solo rate by the concurrency law", () => {
    const s = rateSamples(obs(), { otherStreamsOnModel: 3, otherRequestsOnProvider: 3, promptTokensAhead: undefined });
    assert.equal(s.decodeTps, 50 * (1 + 3 * RATE_CONCURRENCY_LAW_K));
  });

  it("counts the prompts that were waiting ahead on the Mac into a prefill sample (one prefill at a time)", () => {
    assert.equal(
      rateSamples(obs({ ttftMs: 1500 }), {
        otherStreamsOnModel: 2,
        otherRequestsOnProvider: 3,
        promptTokensAhead: 2000,
      }).prefillTps,
      2000,
    );
  });

  it("takes no prefill sample when a load preceded the first token, or others shared the Mac and what was ahead is unknown", () => {
    assert.equal(
      rateSamples(obs(), { otherStreamsOnModel: 0, otherRequestsOnProvider: 1, promptTokensAhead: undefined })
        .prefillTps,
      undefined,
    );
    assert.equal(rateSamples(obs({ coldStart: true }), alone).prefillTps, undefined);
    assert.equal(rateSamples(obs({ promptTokens: MIN_PREFILL_SAMPLE_TOKENS - 1 }), alone).prefillTps, undefined);
  });

  it("skips decode samples too short to time: fewer than 16 tokens or 50 ms", () => {
    assert.equal(rateSamples(obs({ completionTokens: MIN_DECODE_SAMPLE_TOKENS - 1 }), alone).decodeTps, undefined);
    assert.equal(rateSamples(obs({ completionTokens: MIN_DECODE_SAMPLE_TOKENS }), alone).decodeTps, 1.6);
    assert.equal(rateSamples(obs({ decodeMs: MIN_DECODE_SAMPLE_MS - 1 }), alone).decodeTps, undefined);
    assert.equal(rateSamples(obs({ decodeMs: 0, completionTokens: 1e6 }), alone).decodeTps, undefined);
  });

  it("counts no more completion tokens than characters streamed", () => {
    assert.equal(rateSamples(obs({ completionTokens: 50_000, streamedChars: 2000 }), alone).decodeTps, 200);
  });
});

describe("observed rates: EWMA", () => {
  it("takes the first sample as is, then moves by alpha", () => {
    const a = foldRates(fresh, { decodeTps: 50, prefillTps: undefined });
    assert.equal(a.measuredDecodeTps, 50);
    assert.equal(a.measuredPrefillTps, undefined);
    const b = foldRates(a, { decodeTps: 100, prefillTps: 1000 });
    assert.equal(b.measuredDecodeTps, 50 + RATE_EWMA_ALPHA * 50);
    assert.equal(b.measuredPrefillTps, 1000);
  });

  it("caps a sample at the model's physical ceiling", () => {
    assert.equal(foldRates(fresh, { decodeTps: 1e300, prefillTps: 1e300 }).measuredDecodeTps, 400);
    assert.equal(foldRates(fresh, { decodeTps: 1e300, prefillTps: 1e300 }).measuredPrefillTps, 16_000);
  });
});
