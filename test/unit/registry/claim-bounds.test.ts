import assert from "node:assert/strict";
import { defaultCatalog } from "../../../src/models/catalog.js";
import { chipProfiles } from "../../../src/tools/fleet/chip-profiles.js";
import { decodeTps, prefillTps, simModelSpec, tokenBudgetMax } from "../../../src/tools/fleet/mac-performance.js";
import {
  MAX_CONCURRENCY_CLAIM,
  MAX_PREFILL_TO_DECODE,
  MEASURED_CLAIM_FACTOR,
  chipTier,
  clampHardware,
  clampHeartbeat,
  clampRegistration,
  modelCeilings,
  tierBounds,
  type HeartbeatClaimContext,
} from "../../../src/registry/claim-bounds.js";
import type { HardwareInfo, ModelSlot, ProviderHeartbeat, ProviderRegistration } from "../../../src/registry/types.js";

const m4Max: HardwareInfo = {
  chipName: "Apple M4 Max",
  chipFamily: "M4",
  memoryGb: 128,
  memoryBandwidthGbs: 546,
  gpuCores: 40,
};

const registration = (over: Partial<ProviderRegistration> = {}): ProviderRegistration => ({
  serial: "S1",
  accountId: "acct",
  version: "0.7.0",
  hardware: m4Max,
  decodeTps: 72.8,
  prefillTps: 2000,
  maxModelSlots: 2,
  models: defaultCatalog.map((m) => ({
    id: m.id,
    sizeBytes: m.sizeBytes,
    quantization: "q4",
    contextLength: m.contextLength,
    isVision: m.isVision,
    templateRenderOk: undefined,
  })),
  ...over,
});

const slot = (over: Partial<ModelSlot> = {}): ModelSlot => ({
  model: "gpt-oss-20b",
  state: "running",
  numRunning: 1,
  numWaiting: 0,
  maxConcurrency: 8,
  tokenBudgetUsed: 1000,
  tokenBudgetMax: 2_000_000,
  kvBytesPerToken: 49_152,
  observedDecodeTps: 72.8,
  observedPrefillTps: 2000,
  modelLoadTimeMs: 4000,
  ...over,
});

const heartbeat = (slots: ModelSlot[], over: Partial<ProviderHeartbeat> = {}): ProviderHeartbeat => ({
  status: "serving",
  memoryPressure: 0,
  cpuUsage: 0,
  thermal: "nominal",
  totalMemoryGb: 128,
  freeForLoadGb: 40,
  slots,
  warmModels: slots.map((s) => s.model),
  ...over,
});

const context = (hardware: HardwareInfo = m4Max, over: Partial<HeartbeatClaimContext> = {}): HeartbeatClaimContext => ({
  hardware,
  advertisedBytes: () => 0,
  catalog: defaultCatalog,
  ...over,
});

describe("claim bounds: chip tiers", () => {
  const table: [string, string][] = [
    ["Apple M1", "base"],
    ["Apple M4", "base"],
    ["Apple M2 Pro", "pro"],
    ["Apple M4 Max", "max"],
    ["apple m3 ultra", "ultra"],
    ["  Apple M3 Ultra  ", "ultra"],
    ["Apple M4 Max Ultra", "base"],
    ["Apple M1 (Virtual)", "base"],
    ["Intel Xeon Ultra", "base"],
    ["", "base"],
  ];
  for (const [name, tier] of table) it(`reads "${name}" as the ${tier} tier`, () => assert.equal(chipTier(name), tier));

  it("covers every chip profile the simulator knows, with headroom", () => {
    for (const c of chipProfiles) {
      const t = tierBounds(chipTier(c.chipName));
      assert.ok(c.memoryGb * 1.2 <= t.memoryGb, `${c.key} memory`);
      assert.ok(c.memoryBandwidthGbs * 1.2 <= t.memoryBandwidthGbs, `${c.key} bandwidth`);
      assert.ok(c.gpuCores * 1.2 <= t.gpuCores, `${c.key} GPU cores`);
    }
  });

  it("clamps the hardware of an unknown chip to the base tier", () => {
    const clamped: Parameters<typeof clampHardware>[1] = [];
    const hw = clampHardware(
      { chipName: "Totally Real Chip", chipFamily: "X", memoryGb: 2 ** 40, memoryBandwidthGbs: 1e300, gpuCores: 1e6 },
      clamped,
    );
    assert.deepEqual(
      { memoryGb: hw.memoryGb, memoryBandwidthGbs: hw.memoryBandwidthGbs, gpuCores: hw.gpuCores },
      tierBounds("base"),
    );
    assert.deepEqual(
      clamped.map((c) => c.field),
      ["memory_gb", "memory_bandwidth_gbs", "gpu_cores"],
    );
  });
});

describe("claim bounds: honest Macs", () => {
  it("never clamps what any simulated Mac reports for any catalog model", () => {
    for (const chip of chipProfiles) {
      const hardware: HardwareInfo = {
        chipName: chip.chipName,
        chipFamily: chip.chipFamily,
        memoryGb: chip.memoryGb,
        memoryBandwidthGbs: chip.memoryBandwidthGbs,
        gpuCores: chip.gpuCores,
      };
      for (const entry of defaultCatalog) {
        const spec = simModelSpec(entry.id);
        const r = clampRegistration(
          registration({ hardware, decodeTps: decodeTps(chip, spec), prefillTps: prefillTps(chip, spec) }),
          defaultCatalog,
        );
        assert.deepEqual(r.clamped, [], `${chip.key} ${entry.id} registration`);
        const s = slot({
          model: entry.id,
          kvBytesPerToken: entry.kvBytesPerToken,
          tokenBudgetMax: tokenBudgetMax(chip.memoryGb, [entry.sizeBytes], entry.kvBytesPerToken),
          observedDecodeTps: decodeTps(chip, spec),
          observedPrefillTps: prefillTps(chip, spec),
          maxConcurrency: 16,
        });
        const hb = clampHeartbeat(
          heartbeat([s], { totalMemoryGb: chip.memoryGb, freeForLoadGb: chip.memoryGb / 3 }),
          context(r.registration.hardware),
        );
        assert.deepEqual(hb.clamped, [], `${chip.key} ${entry.id} heartbeat`);
      }
    }
  });
});

describe("claim bounds: absurd claims", () => {
  it("clamps a 1e300 tok/s Register to the rate an M4 Max could reach on its lightest model", () => {
    const r = clampRegistration(registration({ decodeTps: 1e300, prefillTps: 1e300 }), defaultCatalog);
    const lightest = modelCeilings(r.registration.hardware, "qwen3-8b", 0, defaultCatalog);
    assert.equal(r.registration.decodeTps, lightest.decodeTps);
    assert.equal(r.registration.prefillTps, lightest.decodeTps * MAX_PREFILL_TO_DECODE);
    assert.ok(r.registration.decodeTps < 1000, `${r.registration.decodeTps}`);
    assert.deepEqual(
      r.clamped.map((c) => c.field),
      ["decode_tps", "prefill_tps"],
    );
    const oss = r.rates.get("gpt-oss-20b")!;
    assert.ok(oss.decodeTpsCeiling < lightest.decodeTps, "each model has its own, tighter, ceiling");
    assert.equal(oss.measuredDecodeTps, undefined);
  });

  it("ignores a tiny advertised size for a catalog model (the catalog's size is used)", () => {
    const c = modelCeilings(m4Max, "gpt-oss-20b", 1, defaultCatalog);
    assert.equal(c.weightsBytes, 12e9);
    assert.ok(
      modelCeilings(m4Max, "my-own-model", 1, defaultCatalog).weightsBytes >= 250e6,
      "an unknown model's size is floored",
    );
  });

  it("clamps a 2^64 KV budget, a 1-byte KV cost and 4,096 slots to what the memory can hold", () => {
    const hb = clampHeartbeat(
      heartbeat(
        [
          slot({
            tokenBudgetMax: 2 ** 64,
            tokenBudgetUsed: 2 ** 63,
            kvBytesPerToken: 1,
            maxConcurrency: 4096,
            observedDecodeTps: 1e300,
            observedPrefillTps: 1e300,
          }),
        ],
        {
          totalMemoryGb: 1e9,
          freeForLoadGb: 1e9,
        },
      ),
      context(),
    );
    const s = hb.heartbeat.slots[0]!;
    assert.equal(s.kvBytesPerToken, 49_152 / 4);
    // (128 GiB − 12 GB of weights) ÷ 12,288 B: ~10 M tokens (an honest M4 Max reports ~2 M).
    assert.equal(s.tokenBudgetMax, Math.floor((128 * 2 ** 30 - 12e9) / 12_288));
    assert.equal(s.tokenBudgetUsed, s.tokenBudgetMax);
    assert.equal(s.maxConcurrency, MAX_CONCURRENCY_CLAIM);
    assert.equal(s.observedDecodeTps, modelCeilings(m4Max, "gpt-oss-20b", 0, defaultCatalog).decodeTps);
    assert.equal(hb.heartbeat.totalMemoryGb, 128);
    assert.equal(hb.heartbeat.freeForLoadGb, 128);
    assert.deepEqual(hb.clamped.map((c) => c.field).sort(), [
      "free_for_load_gb",
      "kv_bytes_per_token",
      "max_concurrency",
      "observed_decode_tps",
      "observed_prefill_tps",
      "token_budget_max",
      "token_budget_used",
      "total_memory_gb",
    ]);
    assert.ok(
      hb.clamped
        .filter((c) => c.field !== "total_memory_gb" && c.field !== "free_for_load_gb")
        .every((c) => c.model === "gpt-oss-20b"),
    );
  });

  it("keeps an unreported KV cost (0) and budget (0) as not reported", () => {
    const hb = clampHeartbeat(
      heartbeat([slot({ kvBytesPerToken: 0, tokenBudgetMax: 0, tokenBudgetUsed: 0 })]),
      context(),
    );
    assert.equal(hb.heartbeat.slots[0]!.kvBytesPerToken, 0);
    assert.equal(hb.heartbeat.slots[0]!.tokenBudgetMax, 0);
    assert.deepEqual(hb.clamped, []);
  });

  it("caps a reported observed rate at 1.2 x what the coordinator measured", () => {
    const measured = {
      decodeTpsCeiling: 400,
      prefillTpsCeiling: 16_000,
      measuredDecodeTps: 50,
      measuredPrefillTps: 1000,
    };
    const hb = clampHeartbeat(
      heartbeat([slot({ observedDecodeTps: 70, observedPrefillTps: 1100 })]),
      context(m4Max, { measured: () => measured }),
    );
    assert.equal(hb.heartbeat.slots[0]!.observedDecodeTps, 50 * MEASURED_CLAIM_FACTOR);
    assert.equal(hb.heartbeat.slots[0]!.observedPrefillTps, 1100, "within 1.2 x is kept");
  });

  it("turns NaN and negative claims into 0", () => {
    const r = clampRegistration(registration({ decodeTps: Number.NaN, prefillTps: -5 }), defaultCatalog);
    assert.equal(r.registration.decodeTps, 0);
    assert.equal(r.registration.prefillTps, 0);
  });
});
