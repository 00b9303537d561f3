import assert from "node:assert/strict";
import { defaultCatalog } from "../../../src/models/catalog.js";
import { ProviderRegistry, type ProviderRegistration } from "../../../src/registry/provider-registry.js";
import type { ModelSlot } from "../../../src/registry/types.js";
import { soloDecodeTps } from "../../../src/scheduler/admission.js";
import { capacitySnapshot } from "../../../src/scheduler/capacity.js";
import { estimateCost, prefillTpsOf } from "../../../src/scheduler/cost.js";
import { pick, type PickContext } from "../../../src/scheduler/pick.js";
import { resolveSchedulerOptions } from "../../../src/scheduler/scheduler-options.js";
import { fixedEstimator, healthy, provider, request, slot, view } from "./fixtures.js";

const MODEL = "gpt-oss-20b";
/** What an M4 Max really does on gpt-oss-20b (the simulator's figures). */
const TRUE_DECODE_TPS = 72.8;
const TRUE_PREFILL_TPS = 2000;
/** What the liar really decodes at: an M3 Max (400 GB/s) posing as an M4 Max. */
const LIAR_TRUE_DECODE_TPS = 53.3;
const options = resolveSchedulerOptions();

const registration = (serial: string, decodeTps: number, prefillTps: number): ProviderRegistration => ({
  serial,
  accountId: `acct-${serial}`,
  version: "0.7.0",
  hardware: { chipName: "Apple M4 Max", chipFamily: "M4", memoryGb: 128, memoryBandwidthGbs: 546, gpuCores: 40 },
  decodeTps,
  prefillTps,
  maxModelSlots: 2,
  models: [
    {
      id: MODEL,
      sizeBytes: 12e9,
      quantization: "mxfp4",
      contextLength: 131_072,
      isVision: false,
      templateRenderOk: undefined,
    },
  ],
});

const warmSlot = (over: Partial<ModelSlot> = {}): ModelSlot => ({
  model: MODEL,
  state: "idle",
  numRunning: 0,
  numWaiting: 0,
  maxConcurrency: 16,
  tokenBudgetUsed: 0,
  tokenBudgetMax: 2_099_609,
  kvBytesPerToken: 49_152,
  observedDecodeTps: TRUE_DECODE_TPS,
  observedPrefillTps: TRUE_PREFILL_TPS,
  modelLoadTimeMs: 8000,
  ...over,
});

const heartbeat = (s: ModelSlot) => ({
  status: "idle" as const,
  memoryPressure: 0,
  cpuUsage: 0,
  thermal: "nominal" as const,
  totalMemoryGb: 128,
  freeForLoadGb: 30,
  slots: [s],
  warmModels: [MODEL],
});

/** The liar: 1e300 tok/s everywhere, a 2^53-token budget, a 1-byte KV cost and 4,096 slots. */
const liarSlot = warmSlot({
  observedDecodeTps: 1e300,
  observedPrefillTps: 1e300,
  tokenBudgetMax: 2 ** 53,
  kvBytesPerToken: 1,
  maxConcurrency: 4096,
});

function fleet(): { registry: ProviderRegistry; honest: string; liar: string } {
  const registry = new ProviderRegistry();
  const honest = registry.add(registration("HONEST", TRUE_DECODE_TPS, TRUE_PREFILL_TPS), 0).id;
  const liar = registry.add(registration("LIAR", 1e300, 1e300), 0).id;
  registry.applyHeartbeat(honest, heartbeat(warmSlot()), 0);
  registry.applyHeartbeat(liar, heartbeat(liarSlot), 0);
  return { registry, honest, liar };
}

/** A small deterministic PRNG (mulberry32) for the tie-breaks. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("scheduler: claims checked against observations", () => {
  /**
   * 400 requests through pick → dispatch → completion, 4 in flight, completions in random order. The liar
   * names an M4 Max but really decodes like an M3 Max (400 GB/s: 53.3 tok/s). With `measure`, every completion
   * is timed and fed back as the dispatcher does. Returns the liar's share of the picks.
   */
  function liarShareOfPicks(measure: boolean): number {
    const { registry, liar } = fleet();
    const ctx: PickContext = {
      nowMs: 0,
      random: seeded(7),
      health: healthy(),
      estimator: fixedEstimator(500),
      catalog: defaultCatalog,
      options,
    };
    const running: { providerId: string; requestId: string; streaming: boolean }[] = [];
    const order = seeded(11);
    let liarPicks = 0;
    const complete = () => {
      const r = running.splice(Math.floor(order() * running.length), 1)[0]!;
      const n = [...registry.get(r.providerId)!.inflight.values()].filter((q) => q.model === MODEL).length;
      const solo = r.providerId === liar ? LIAR_TRUE_DECODE_TPS : TRUE_DECODE_TPS;
      const perStream = solo / (1 + options.concurrencyLawK * (n - 1));
      const decodeMs = (500 / perStream) * 1000;
      if (measure)
        registry.observeRates(r.providerId, MODEL, {
          requestId: r.requestId,
          promptTokens: 1000,
          completionTokens: 500,
          ttftMs: (1000 / TRUE_PREFILL_TPS) * 1000,
          decodeMs,
        });
      registry.removeInflight(r.providerId, r.requestId);
    };
    for (let i = 0; i < 400; i++) {
      // Requests already running have started streaming by the time the next one arrives.
      for (const r of running) {
        if (!r.streaming) registry.addUsedTokens(r.providerId, r.requestId, 1);
        r.streaming = true;
      }
      const req = { ...request(MODEL, { estimatedPromptTokens: 1000, maxTokens: 4096 }), requestId: `r${i}` };
      const result = pick(registry.view(), req, ctx);
      if (result.kind !== "picked") assert.fail(JSON.stringify(result));
      if (result.providerId === liar) liarPicks++;
      registry.addInflight(result.providerId, {
        requestId: req.requestId,
        model: MODEL,
        reservedTokens: result.reservedTokens,
        usedTokens: 1000,
        remainingOutputTokens: 500,
        promptTokens: 1000,
        startedAtMs: 0,
        seenByProvider: false,
      });
      running.push({ providerId: result.providerId, requestId: req.requestId, streaming: false });
      if (running.length > 4) complete();
    }
    return liarPicks / 400;
  }

  it("does not give the majority of picks to a provider claiming 1e300 tok/s and a 2^53 budget once it is measured", () => {
    const measured = liarShareOfPicks(true);
    assert.ok(measured <= 0.5, `the liar won ${measured * 400} of 400 picks`);
    assert.ok(measured >= 0.2, `and still serves its share: ${measured * 400} of 400`);
    // The control: clamped to physics but unmeasured, its claim (~300 tok/s) still wins most picks.
    const claimsOnly = liarShareOfPicks(false);
    assert.ok(claimsOnly > measured + 0.25, `claims only: ${claimsOnly * 400} of 400`);
  });

  it("caps an unmeasured claim at the model's physical ceiling", () => {
    const { registry, liar } = fleet();
    const p = registry.get(liar)!;
    const decode = soloDecodeTps(p, p.slots[0]);
    assert.equal(decode, p.modelRates.get(MODEL)!.decodeTpsCeiling);
    assert.ok(decode < 400, `${decode}`);
    assert.ok(prefillTpsOf(p, p.slots[0], options) <= decode * 40);
  });

  it("uses the measured rate instead of the claim once there is one, in either direction", () => {
    const { registry, honest, liar } = fleet();
    const o = (requestId: string, decodeMs: number) => ({
      requestId,
      promptTokens: 1000,
      completionTokens: 500,
      ttftMs: 500,
      decodeMs,
    });
    registry.observeRates(liar, MODEL, o("a", 20_000));
    registry.observeRates(honest, MODEL, o("b", 5_000));
    assert.equal(soloDecodeTps(registry.get(liar)!, registry.get(liar)!.slots[0]), 25);
    assert.equal(soloDecodeTps(registry.get(honest)!, registry.get(honest)!.slots[0]), 100);
    assert.equal(
      prefillTpsOf(registry.get(liar)!, undefined, options, MODEL),
      2000,
      "a cold estimate uses the model's measurement too",
    );
  });

  it("ties an unmeasured prefill claim to the measured decode rate", () => {
    const { registry, liar } = fleet();
    registry.addInflight(liar, {
      requestId: "other",
      model: MODEL,
      reservedTokens: 1,
      usedTokens: 1,
      remainingOutputTokens: 0,
      startedAtMs: 0,
      seenByProvider: false,
    });
    registry.observeRates(liar, MODEL, {
      requestId: "a",
      promptTokens: 1000,
      completionTokens: 500,
      ttftMs: 500,
      decodeMs: 10_000,
    });
    const p = registry.get(liar)!;
    assert.equal(p.modelRates.get(MODEL)!.measuredPrefillTps, undefined, "the Mac was busy: no prefill sample");
    assert.equal(prefillTpsOf(p, p.slots[0], options), 50 * 1.27 * 50);
  });

  it("multiplies the cost estimate by the provider's cost penalty factor", () => {
    const a = provider("a", { slots: [slot("gemma")] });
    const b = provider("b", { slots: [slot("gemma")], costPenaltyFactor: 3 });
    const cost = (p: typeof a) => estimateCost(p, "gemma", p.slots[0], 0, 1000, 500, 16e9, options).costMs;
    assert.equal(cost(b), cost(a) * 3);
    const ctx: PickContext = {
      nowMs: 0,
      random: () => 0.99,
      health: healthy(),
      estimator: fixedEstimator(500),
      catalog: [{ id: "gemma", defaultMaxTokens: 8192, contextLength: 131_072, sizeBytes: 16e9, isVision: true }],
      options,
    };
    const r = pick(view(b, a), request("gemma"), ctx);
    assert.equal(r.kind === "picked" && r.providerId, "a");
  });
});

describe("capacity: claims", () => {
  it("never advertises an unbounded figure for a provider with absurd claims", () => {
    const { registry } = fleet();
    const row = capacitySnapshot(registry.view(), new Map(), defaultCatalog, 0).models.find((m) => m.id === MODEL)!;
    // Honest: ~2.1 M tokens. Liar: (128 GiB − 12 GB) ÷ (49,152 ÷ 4) B ≈ 10.2 M tokens, not 2^53.
    assert.equal(row.token_budget_total, 2_099_609 + Math.floor((128 * 2 ** 30 - 12e9) / 12_288));
    assert.ok(row.token_budget_remaining <= row.token_budget_total);
    assert.equal(row.warm_providers, 2);
    assert.ok(row.estimated_ttft_ms !== null && row.estimated_ttft_ms >= 10, `ttft ${row.estimated_ttft_ms}`);
    for (const [k, v] of Object.entries(row))
      if (typeof v === "number") assert.ok(Number.isSafeInteger(Math.round(v)) && v < 1e8, `${k} = ${v}`);
  });

  it("bounds the aggregate rate of a busy liar by its physical ceiling", () => {
    const { registry, liar } = fleet();
    registry.applyHeartbeat(liar, heartbeat({ ...liarSlot, numRunning: 4000, state: "running" }), 1);
    const row = capacitySnapshot(registry.view(), new Map(), defaultCatalog, 0).models.find((m) => m.id === MODEL)!;
    const ceiling = registry.get(liar)!.modelRates.get(MODEL)!.decodeTpsCeiling;
    assert.ok(row.aggregate_tps <= ceiling * 64, `${row.aggregate_tps}`);
  });
});
