/**
 * Model pools on a multi-model fleet (issue 14): 24 Macs that each hold both gpt-oss-20b and gemma-4-26b on disk
 * and have room for two loaded models, steady traffic on both models, and a gemma burst in the middle third
 * that the gemma machines alone cannot absorb. Run with pools (each Mac serves one pool; idle, empty Macs move
 * on demand; a full pool answers `pool_exhausted`) against the same kv-aware policy without pools (every Mac
 * may load and serve both models side by side, sharing one GPU and one memory).
 */
import type { MacSpec, Scenario } from "../scenario.js";
import { ln, measuredPerf, networkDefaults } from "./network-defaults.js";

const MODELS = ["gpt-oss-20b", "gemma-4-26b"];

const fleet: MacSpec[] = [
  ...Array.from(
    { length: 8 },
    (): MacSpec => ({
      chipName: "Apple M4 Max",
      chipFamily: "M4",
      memoryGb: 128,
      memoryBandwidthGbs: 546,
      maxModelSlots: 2,
      version: "0.7.1",
      reportsFreeForLoad: true,
      models: MODELS,
    }),
  ),
  ...Array.from(
    { length: 16 },
    (): MacSpec => ({
      chipName: "Apple M2 Max",
      chipFamily: "M2",
      memoryGb: 96,
      memoryBandwidthGbs: 400,
      maxModelSlots: 2,
      version: "0.7.1",
      reportsFreeForLoad: true,
      models: MODELS,
    }),
  ),
];

/** Builds the scenario for a duration (default 1 h; the burst runs in its middle third). */
export function twoModelPoolsScenario(options: { hours?: number } = {}): Scenario {
  const durationMs = Math.round((options.hours ?? 1) * 3_600_000);
  return {
    name: "two-model-pools",
    baseline: "no-pools",
    durationMs,
    ...networkDefaults,
    fleet,
    perf: measuredPerf,
    openLoops: [
      {
        model: "gpt-oss-20b",
        ratePerS: 1.2,
        prompt: ln(700, 0.8, 16_000, 20),
        maxTokens: 4096,
        output: ln(350, 0.9, 4096),
        vision: false,
        startMs: 0,
        endMs: durationMs,
      },
      {
        model: "gemma-4-26b",
        ratePerS: 0.5,
        prompt: ln(600, 0.7, 8000, 20),
        maxTokens: 2048,
        output: ln(400, 0.7, 2048),
        vision: false,
        startMs: 0,
        endMs: durationMs,
      },
    ],
    workers: [
      {
        model: "gemma-4-26b",
        concurrency: 96,
        prompt: ln(900, 0.8, 16_000, 50),
        maxTokens: 4096,
        output: ln(1200, 0.7, 4096),
        vision: false,
        startMs: durationMs / 3,
        endMs: (durationMs * 2) / 3,
        thinkMs: 500,
      },
    ],
  };
}
