/**
 * A fleet that does not sit still (issue 18: "not tuned to one scenario"): 48 Macs serving three models —
 * gpt-oss-20b, gemma-4-26b and qwen3-8b (which the 24 GB Macs can hold too) — where a third of the Macs join
 * late or leave early (requests on a leaving Mac are routed again), a quarter throttle thermally for a while
 * (running at 55 % and reporting "serious"), and the open-loop traffic follows a diurnal curve compressed into the
 * run (one "day" per run: quiet, peak, quiet). On top, gemma long-reasoning workers and a qwen burst in the
 * middle third. The fleet's layout (who churns, when) is fixed by its own seed, so runs differ only by traffic.
 */
import { mulberry32 } from "../../shared/mulberry32.js";
import type { MacSpec, ModelPerf, Scenario } from "../scenario.js";
import { gemmaEvalWorkers, ln, measuredPerf, networkDefaults } from "./network-defaults.js";

const MODELS = ["gpt-oss-20b", "gemma-4-26b", "qwen3-8b"];

/** qwen3-8b: a dense 8B model, ~90 tok/s solo on an M4 Max. */
const qwenPerf: ModelPerf = {
  id: "qwen3-8b",
  decodeTpsPerGbs: 0.165,
  prefillToDecode: 12,
  loadGbPerS: 1.5,
  loadBaseMs: 3000,
};

/** Seed of the fleet's layout (which Macs churn or throttle, and when): independent of the run's seed. */
const LAYOUT_SEED = 18;

type Base = Pick<MacSpec, "chipName" | "chipFamily" | "memoryGb" | "memoryBandwidthGbs" | "maxModelSlots">;
const KINDS: [number, Base][] = [
  [6, { chipName: "Apple M2", chipFamily: "M2", memoryGb: 24, memoryBandwidthGbs: 100, maxModelSlots: 1 }],
  [12, { chipName: "Apple M4 Pro", chipFamily: "M4", memoryGb: 48, memoryBandwidthGbs: 273, maxModelSlots: 1 }],
  [18, { chipName: "Apple M2 Max", chipFamily: "M2", memoryGb: 64, memoryBandwidthGbs: 400, maxModelSlots: 1 }],
  [12, { chipName: "Apple M4 Max", chipFamily: "M4", memoryGb: 128, memoryBandwidthGbs: 546, maxModelSlots: 2 }],
];

/** The fleet for a run of `durationMs`: churn and throttle windows drawn from {@link LAYOUT_SEED}. */
function fleetFor(durationMs: number): MacSpec[] {
  const random = mulberry32(LAYOUT_SEED);
  const fleet: MacSpec[] = [];
  for (const [count, base] of KINDS) {
    for (let i = 0; i < count; i++) {
      const n = fleet.length;
      const spec: MacSpec = {
        ...base,
        models: MODELS,
        reportsFreeForLoad: n % 3 !== 0,
        reportsTokenBudget: n % 3 !== 0,
        version: "0.7.1",
      };
      const r = random();
      if (r < 0.15) {
        // Joins late and stays.
        spec.online = [{ fromMs: random() * durationMs * 0.6, toMs: durationMs }];
      } else if (r < 0.3) {
        // Leaves for a while mid-run (a laptop closed) and comes back.
        const from = random() * durationMs * 0.7;
        spec.online = [
          { fromMs: 0, toMs: from },
          { fromMs: from + durationMs * (0.1 + 0.2 * random()), toMs: durationMs },
        ];
      } else if (r < 0.35) {
        // Leaves for good.
        spec.online = [{ fromMs: 0, toMs: durationMs * (0.3 + 0.6 * random()) }];
      }
      if (random() < 0.25) {
        const from = random() * durationMs * 0.8;
        spec.throttled = [{ fromMs: from, toMs: from + durationMs * (0.05 + 0.15 * random()), factor: 0.55 }];
      }
      fleet.push(spec);
    }
  }
  return fleet;
}

/** Builds the scenario for a duration (default 2 h; one diurnal period per run). */
export function fleetChurnScenario(options: { hours?: number } = {}): Scenario {
  const durationMs = Math.round((options.hours ?? 2) * 3_600_000);
  // Quiet at the start and end, peak in the middle: sin(2π(t + phase)/T) with phase −T/4.
  const diurnal = { periodMs: durationMs, amplitude: 0.7, phaseMs: -durationMs / 4 };
  return {
    name: "fleet-churn",
    durationMs,
    ...networkDefaults,
    fleet: fleetFor(durationMs),
    perf: [...measuredPerf, qwenPerf],
    openLoops: [
      {
        model: "gpt-oss-20b",
        ratePerS: 0.5,
        prompt: ln(700, 0.8, 16_000, 20),
        maxTokens: 4096,
        output: ln(400, 0.9, 4096),
        vision: false,
        startMs: 0,
        endMs: durationMs,
        diurnal,
      },
      {
        model: "gemma-4-26b",
        ratePerS: 0.25,
        prompt: ln(600, 0.7, 8000, 20),
        maxTokens: 4096,
        output: ln(700, 0.8, 4096),
        vision: false,
        startMs: 0,
        endMs: durationMs,
        diurnal,
      },
      {
        model: "qwen3-8b",
        ratePerS: 0.4,
        prompt: ln(500, 0.8, 8000, 20),
        maxTokens: 2048,
        output: ln(300, 0.8, 2048),
        vision: false,
        startMs: 0,
        endMs: durationMs,
        diurnal,
      },
    ],
    workers: [
      gemmaEvalWorkers(durationMs),
      {
        model: "qwen3-8b",
        concurrency: 32,
        prompt: ln(900, 0.8, 16_000, 50),
        maxTokens: 4096,
        output: ln(1000, 0.7, 4096),
        vision: false,
        startMs: durationMs / 3,
        endMs: (durationMs * 2) / 3,
        thinkMs: 500,
      },
    ],
  };
}
