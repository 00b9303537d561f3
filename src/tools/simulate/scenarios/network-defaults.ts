/**
 * What the shipped scenarios share: the models' measured performance (calibrated to the load-test report: gpt-oss
 * ~46–93 tok/s solo, gemma ~30–60) and the provider and coordinator settings both policies run with.
 */
import type { LogNormal } from "../prng.js";
import type { ModelPerf, Scenario, WorkerGroup } from "../scenario.js";

/** A log-normal length distribution, clamped to [min, max]. */
export const ln = (median: number, sigma: number, max: number, min = 1): LogNormal => ({ median, sigma, min, max });

export const measuredPerf: ModelPerf[] = [
  { id: "gpt-oss-20b", decodeTpsPerGbs: 0.17, prefillToDecode: 12, loadGbPerS: 1.5, loadBaseMs: 3000 },
  { id: "gemma-4-26b", decodeTpsPerGbs: 0.11, prefillToDecode: 8, loadGbPerS: 1.5, loadBaseMs: 3000 },
];

/** Simulation step, heartbeats, the provider's own limits (idle timeout 60 min, §3.8) and the coordinator's queue. */
export const networkDefaults = {
  tickMs: 250,
  heartbeatMs: 5000,
  idleUnloadMs: 3_600_000,
  providerMaxConcurrency: 16,
  warmPoolTickMs: 10_000,
  queueMaxDepth: 10,
  queueMaxWaitMs: 120_000,
  loadCooldownMs: 120_000,
  refusalDelayMs: 1500,
} satisfies Partial<Scenario>;

/**
 * The round-the-clock gemma long text-reasoning evals (the requests that stalled in the report's Issue 5). Eight
 * workers is a calibration of ours, not a figure the report gives; both shipped scenarios with gemma run them.
 */
export function gemmaEvalWorkers(durationMs: number): WorkerGroup {
  return {
    model: "gemma-4-26b",
    concurrency: 8,
    prompt: ln(1500, 0.6, 20_000, 100),
    maxTokens: 32768,
    output: ln(3000, 0.8, 32768),
    vision: false,
    startMs: 0,
    endMs: durationMs,
    thinkMs: 1000,
  };
}
