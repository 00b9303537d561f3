/**
 * What a simulation runs: a modelled fleet and a workload. Plain data, so scenarios are easy to write and
 * to scale (see scenarios/load-test-report.ts).
 */
import type { LogNormal } from "./prng.js";

/** One simulated Mac. */
export interface MacSpec {
  chipName: string;
  chipFamily: string;
  memoryGb: number;
  memoryBandwidthGbs: number;
  /** Provider version string (affects the tools floor). */
  version: string;
  maxModelSlots: number;
  /** Whether this provider reports `freeForLoadGb` (newer builds do). */
  reportsFreeForLoad: boolean;
  /** Whether its slots report `active_token_budget_max/used` (newer builds do; older ones leave them 0). Default true. */
  reportsTokenBudget?: boolean;
  /** Models on disk. */
  models: string[];
  /** When the Mac is connected, ms windows `[fromMs, toMs)` (churn); default: the whole run. */
  online?: { fromMs: number; toMs: number }[];
  /** Thermal throttling: windows in which it runs at `factor` (< 1) of its speed, reporting thermal "serious". */
  throttled?: { fromMs: number; toMs: number; factor: number }[];
}

/** How a model performs in the simulated fleet. */
export interface ModelPerf {
  id: string;
  /** Solo decode tok/s per GB/s of memory bandwidth. */
  decodeTpsPerGbs: number;
  /** Prefill rate as a multiple of solo decode. */
  prefillToDecode: number;
  /** Load throughput from SSD, GB/s, plus a fixed warm-up, ms. */
  loadGbPerS: number;
  loadBaseMs: number;
}

/** Open-loop Poisson traffic. */
export interface OpenLoop {
  model: string;
  ratePerS: number;
  prompt: LogNormal;
  maxTokens: number;
  output: LogNormal;
  vision: boolean;
  startMs: number;
  endMs: number;
  /**
   * A diurnal curve: the rate at time t is ratePerS × (1 + amplitude × sin(2π (t + phaseMs) ÷ periodMs)),
   * amplitude in [0, 1). Default: flat.
   */
  diurnal?: { periodMs: number; amplitude: number; phaseMs?: number };
}

/** Closed-loop workers (the burst matrix): each sends a request, waits for it, thinks, repeats. */
export interface WorkerGroup {
  model: string;
  concurrency: number;
  prompt: LogNormal;
  maxTokens: number;
  output: LogNormal;
  vision: boolean;
  startMs: number;
  endMs: number;
  thinkMs: number;
  /**
   * The group stops after issuing this many requests in all (a burst of a given size, as Appendix A of the
   * load-test report counts them); unlimited when absent.
   */
  requests?: number;
}

export interface Scenario {
  name: string;
  durationMs: number;
  /** Simulation step, ms. */
  tickMs: number;
  /** Provider heartbeat period, ms (providers also report on every completion and load). */
  heartbeatMs: number;
  fleet: MacSpec[];
  perf: ModelPerf[];
  openLoops: OpenLoop[];
  workers: WorkerGroup[];
  /** A provider unloads a model idle this long, ms. */
  idleUnloadMs: number;
  /** The provider's own per-slot concurrency limit. */
  providerMaxConcurrency: number;
  warmPoolTickMs: number;
  queueMaxDepth: number;
  queueMaxWaitMs: number;
  /** Load-refusal cooldown for (provider, model), ms. */
  loadCooldownMs: number;
  /** Time a refused load costs the request before it is re-picked, ms. */
  refusalDelayMs: number;
  /**
   * What `coordinator simulate` compares the kv-aware policy against: the Go coordinator's worst-case policy
   * (default), or the kv-aware policy itself without model pools (then the kv-aware run has pools on).
   */
  baseline?: "worst-case" | "no-pools";
  /**
   * What the real system was observed doing under the Go coordinator, for the faithful-baseline check
   * (targets.ts): per model, warm (running) Macs min / median / max (of the sustained run: compared with the
   * samples taken between bursts) and the first-token tail, ms.
   */
  observed?: { model: string; runningMacs: { min: number; median: number; max: number }; firstTokenTailMs?: number }[];
}
