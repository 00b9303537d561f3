import assert from "node:assert/strict";
import { ProviderRegistry, type ProviderRegistration } from "../../../src/registry/provider-registry.js";
import type { ModelSlot } from "../../../src/registry/types.js";
import { setStatsd, type StatsdLike } from "../../../src/telemetry/metrics.js";

const registration = (serial: string, over: Partial<ProviderRegistration> = {}): ProviderRegistration => ({
  serial,
  accountId: "acct",
  version: "0.7.0",
  hardware: { chipName: "Apple M4 Max", chipFamily: "M4", memoryGb: 128, memoryBandwidthGbs: 546, gpuCores: 40 },
  decodeTps: 72.8,
  prefillTps: 2000,
  maxModelSlots: 2,
  models: [
    {
      id: "gpt-oss-20b",
      sizeBytes: 12e9,
      quantization: "q4",
      contextLength: 131072,
      isVision: false,
      templateRenderOk: undefined,
    },
  ],
  ...over,
});

const slot = (o: Partial<ModelSlot> = {}): ModelSlot => ({
  model: "gpt-oss-20b",
  state: "running",
  numRunning: 0,
  numWaiting: 0,
  maxConcurrency: 8,
  tokenBudgetUsed: 0,
  tokenBudgetMax: 2_000_000,
  kvBytesPerToken: 49_152,
  observedDecodeTps: 72.8,
  observedPrefillTps: 2000,
  modelLoadTimeMs: 4000,
  ...o,
});

const heartbeat = (slots: ModelSlot[]) => ({
  status: "serving" as const,
  memoryPressure: 0,
  cpuUsage: 0,
  thermal: "nominal" as const,
  totalMemoryGb: 128,
  freeForLoadGb: 40,
  slots,
  warmModels: slots.map((s) => s.model),
});

const inflight = (requestId: string, model = "gpt-oss-20b") => ({
  requestId,
  model,
  reservedTokens: 1500,
  usedTokens: 1000,
  remainingOutputTokens: 500,
  promptTokens: 1000,
  startedAtMs: 0,
  seenByProvider: false,
});

/** A DogStatsD stand-in that keeps the counters it is sent. */
function fakeStatsd(): StatsdLike & { counts: string[] } {
  const counts: string[] = [];
  return {
    counts,
    increment: (stat, value, tags) => counts.push(`${stat}:${value}:${tags?.source}:${tags?.field}`),
    distribution: () => {},
    gauge: () => {},
  };
}

describe("ProviderRegistry: claims", () => {
  afterEach(() => setStatsd(undefined));

  it("keeps a liar's Register clamped to its chip's physics, says what was clamped and counts it", () => {
    const statsd = fakeStatsd();
    setStatsd(statsd);
    const r = new ProviderRegistry();
    const p = r.add(
      registration("LIAR", {
        decodeTps: 1e300,
        prefillTps: 1e300,
        hardware: { chipName: "Apple M1", chipFamily: "M1", memoryGb: 2 ** 40, memoryBandwidthGbs: 1e300, gpuCores: 8 },
      }),
      0,
    );
    assert.ok(p.decodeTps < 300, `decode ${p.decodeTps}`);
    assert.equal(p.hardware.memoryGb, 40);
    assert.equal(p.totalMemoryGb, 40);
    assert.deepEqual(
      p.claimsClamped.map((c) => c.field),
      ["memory_gb", "memory_bandwidth_gbs", "decode_tps", "prefill_tps"],
    );
    assert.deepEqual(statsd.counts, [
      "provider.claims_clamped:1:register:memory_gb",
      "provider.claims_clamped:1:register:memory_bandwidth_gbs",
      "provider.claims_clamped:1:register:decode_tps",
      "provider.claims_clamped:1:register:prefill_tps",
    ]);
  });

  it("clamps a heartbeat's 2^53 token budget before the scheduler can see it, and returns the clamps", () => {
    const statsd = fakeStatsd();
    setStatsd(statsd);
    const r = new ProviderRegistry();
    const p = r.add(registration("A"), 0);
    assert.deepEqual(r.applyHeartbeat(p.id, heartbeat([slot()]), 1), [], "an honest heartbeat is untouched");
    const clamped = r.applyHeartbeat(p.id, heartbeat([slot({ tokenBudgetMax: 2 ** 53 })]), 2);
    assert.deepEqual(
      clamped.map((c) => [c.field, c.model]),
      [["token_budget_max", "gpt-oss-20b"]],
    );
    assert.ok(p.slots[0]!.tokenBudgetMax < 5_000_000, `${p.slots[0]!.tokenBudgetMax}`);
    assert.deepEqual(statsd.counts, ["provider.claims_clamped:1:heartbeat:token_budget_max"]);
    assert.deepEqual(r.applyHeartbeat("nobody", heartbeat([slot()]), 3), []);
  });

  it("measures rates per model, corrected for the other streams in flight, and caps later claims at 1.2 x", () => {
    const r = new ProviderRegistry();
    const p = r.add(registration("A"), 0);
    r.addInflight(p.id, inflight("first"));
    r.addInflight(p.id, inflight("mine"));
    r.addUsedTokens(p.id, "mine", 500);
    r.removeInflight(p.id, "first");
    r.addInflight(p.id, inflight("after"));
    // "first" was still waiting for its prefill when "mine" was dispatched: its prompt counts ahead of mine.
    const rates = r.observeRates(p.id, "gpt-oss-20b", {
      requestId: "mine",
      promptTokens: 1000,
      completionTokens: 500,
      ttftMs: 1000,
      decodeMs: 10_000,
    });
    assert.equal(rates?.measuredDecodeTps, 50 * 1.27, "one other stream: solo = per-stream x (1 + k)");
    assert.equal(rates?.measuredPrefillTps, 2000);
    assert.equal(p.modelRates.get("gpt-oss-20b"), rates);
    r.applyHeartbeat(p.id, heartbeat([slot({ observedDecodeTps: 200 })]), 1);
    assert.equal(p.slots[0]!.observedDecodeTps, 50 * 1.27 * 1.2);
  });

  it("ignores measurements for an unknown provider or a model the provider does not advertise", () => {
    const r = new ProviderRegistry();
    const p = r.add(registration("A"), 0);
    const o = { requestId: "x", promptTokens: 1000, completionTokens: 500, ttftMs: 500, decodeMs: 10_000 };
    assert.equal(r.observeRates(p.id, "qwen3-8b", o), undefined);
    assert.equal(r.observeRates("nobody", "gpt-oss-20b", o), undefined);
  });

  it("sets a cost penalty factor of at least 1 and refuses anything else", () => {
    const r = new ProviderRegistry();
    const p = r.add(registration("A"), 0);
    assert.equal(p.costPenaltyFactor, 1);
    r.setCostPenalty(p.id, 3);
    assert.equal(p.costPenaltyFactor, 3);
    for (const bad of [0.5, 0, -1, Number.NaN, Number.POSITIVE_INFINITY])
      assert.throws(() => r.setCostPenalty(p.id, bad), RangeError);
    assert.doesNotThrow(() => r.setCostPenalty("nobody", 2));
  });
});
