/**
 * The physics of a simulated Mac, as pure functions: how fast it decodes and prefills a model, how long a
 * load takes, how much memory it keeps for itself, and the provider's own memory rules (load admission and
 * KV token budget). No I/O and no clock: the SimulatedMac (real time, real protocol) and the routing
 * simulator's SimProvider (discrete time, src/tools/simulate/sim-provider.ts) call these with their state.
 */
import { catalogEntry, defaultCatalog, type CatalogEntry } from "../../models/catalog.js";
import { RATE_CONCURRENCY_LAW_K } from "../../registry/observed-rates.js";
import type { ChipProfile } from "./chip-profiles.js";

const GB = 1_000_000_000;

/** What the simulator needs to know about a model it has on disk. */
export interface SimModelSpec {
  id: string;
  sizeBytes: number;
  kvBytesPerToken: number;
  contextLength: number;
  isVision: boolean;
  /** Default output cap when a request names none. */
  defaultMaxTokens: number;
  /**
   * Fraction of the weights read from memory per decoded token. Dense models read everything (1.0); MoE
   * models read their active experts plus shared attention, and real kernels never reach peak bandwidth, so
   * this is tuned to published M-series numbers rather than derived from parameter counts alone.
   */
  bytesReadFraction: number;
}

/** Per-model decode tuning; anything not listed is treated as a dense model. */
const bytesReadFractions: Readonly<Record<string, number>> = {
  // MoE, ~3.6B active of 21B, MXFP4: ~65-75 tok/s on an M4 Max.
  "gpt-oss-20b": 0.5,
  // ~50 tok/s on an M4 Max.
  "gemma-4-26b": 0.55,
};

/** Builds the spec of `id` from the catalog, with plausible fallbacks for models outside it. */
export function simModelSpec(id: string, catalog: readonly CatalogEntry[] = defaultCatalog): SimModelSpec {
  const entry = catalogEntry(catalog, id);
  return {
    id,
    sizeBytes: entry?.sizeBytes ?? 8 * GB,
    kvBytesPerToken: entry?.kvBytesPerToken ?? 131_072,
    contextLength: entry?.contextLength ?? 32_768,
    isVision: entry?.isVision ?? false,
    defaultMaxTokens: entry?.defaultMaxTokens ?? 4096,
    bytesReadFraction: bytesReadFractions[id] ?? (id.startsWith("gpt-oss") ? 0.5 : 1),
  };
}

/**
 * Decode is memory-bandwidth bound: single-stream tok/s scale linearly with the chip's GB/s. `tpsPerGbs` is
 * the model's slope: {@link decodeTps} derives it from the bytes read per token, the routing simulator takes
 * it measured (scenario `ModelPerf.decodeTpsPerGbs`).
 */
export function bandwidthBoundDecodeTps(memoryBandwidthGbs: number, tpsPerGbs: number): number {
  return memoryBandwidthGbs * tpsPerGbs;
}

/** Prefill rate from a decode rate and a measured prefill-to-decode ratio (the routing simulator's model). */
export function prefillTpsFromDecode(decodeTps: number, prefillToDecode: number): number {
  return decodeTps * prefillToDecode;
}

/** Memory bandwidth achieved by Metal kernels relative to the chip's peak. */
const BANDWIDTH_EFFICIENCY = 0.8;

/** Single-stream decode rate, tokens/s: bandwidth × 0.8 ÷ bytes read per token. */
export function decodeTps(chip: ChipProfile, model: SimModelSpec): number {
  const bytesPerToken = model.sizeBytes * model.bytesReadFraction;
  return round1((chip.memoryBandwidthGbs * GB * BANDWIDTH_EFFICIENCY) / bytesPerToken);
}

/**
 * Prefill rate, tokens/s. Prefill is compute-bound, so it scales with GPU cores and inversely with the
 * bytes touched per token (a proxy for active parameters): ~2,000 tok/s for gpt-oss-20b on a 40-core M4 Max.
 */
export function prefillTps(chip: ChipProfile, model: SimModelSpec): number {
  const effectiveGb = (model.sizeBytes * model.bytesReadFraction) / GB;
  return round1((chip.gpuCores * 50 * 6) / effectiveGb);
}

/**
 * Per-stream decode rate with `n` requests generating at once on one Mac: `tps / (1 + k·(n−1))` with the
 * coordinator's k ({@link RATE_CONCURRENCY_LAW_K}, 0.27): the degradation measured on real Macs (batching
 * raises the total, each stream slows down).
 */
export function concurrentDecodeTps(singleStreamTps: number, n: number): number {
  return singleStreamTps / (1 + RATE_CONCURRENCY_LAW_K * (Math.max(1, n) - 1));
}

/** Memory macOS and the provider keep for themselves, GB: 10 % of RAM, at least 4 GB. */
export function osReserveGb(memoryGb: number): number {
  return Math.max(4, memoryGb * 0.1);
}

/** Simulated ms to read `sizeBytes` from SSD into unified memory at `diskGbs` GB/s, rounded. */
export function loadTimeMs(sizeBytes: number, diskGbs: number): number {
  return Math.round(loadDurationMs(sizeBytes, diskGbs));
}

/** Unrounded load time, ms: `warmupMs` (the engine's fixed start-up; default none) plus reading the weights at `diskGbs` GB/s. */
export function loadDurationMs(sizeBytes: number, diskGbs: number, warmupMs = 0): number {
  return warmupMs + (sizeBytes / GB / diskGbs) * 1000;
}

/** One model resident in memory, as the memory rules see it. */
export interface ResidentModel {
  id: string;
  sizeBytes: number;
  /** Idle models (nothing running or waiting) are evictable when a new load needs room. */
  idle: boolean;
  /** KV bytes held by admitted requests. */
  kvBytesUsed: number;
}

/**
 * Memory (GB) a new load may use: total − OS reserve − weights and KV of busy models. Idle models count as
 * evictable, so their memory is available.
 */
export function memoryAvailableForLoadGb(memoryGb: number, resident: readonly ResidentModel[]): number {
  let busy = 0;
  for (const m of resident) if (!m.idle) busy += m.sizeBytes + m.kvBytesUsed;
  return Math.max(0, memoryGb - osReserveGb(memoryGb) - busy / GB);
}

/**
 * The provider's load rule on its own: weights × 3 must fit in `availableGb` (the weights plus room for the
 * engine's buffers and KV). Callers choose the units and what counts as available.
 */
export function weightsFitLoadRule(weightsGb: number, availableGb: number): boolean {
  return weightsGb * 3 <= availableGb;
}

/** The largest weights, GB, that {@link weightsFitLoadRule} accepts in `availableGb`. */
export function maxLoadableWeightsGb(availableGb: number): number {
  return availableGb / 3;
}

/** The provider's load rule: weights × 3 must fit in the memory available for a load. */
export function canLoad(memoryGb: number, resident: readonly ResidentModel[], sizeBytes: number): boolean {
  return weightsFitLoadRule(sizeBytes / GB, memoryAvailableForLoadGb(memoryGb, resident));
}

/** `free_for_load_gb`: the largest model (GB of weights) the load rule would accept now. */
export function freeForLoadGb(memoryGb: number, resident: readonly ResidentModel[]): number {
  return round1(maxLoadableWeightsGb(memoryAvailableForLoadGb(memoryGb, resident)));
}

/** True when a model of `sizeBytes` could ever load on an otherwise empty Mac of `memoryGb`. */
export function fitsEmptyMac(memoryGb: number, sizeBytes: number): boolean {
  return canLoad(memoryGb, [], sizeBytes);
}

/**
 * KV token budget of one loaded model: memory left after the OS reserve and every resident model's weights,
 * shared evenly among the resident models, divided by the model's KV bytes per token.
 */
export function tokenBudgetMax(
  memoryGb: number,
  residentSizesBytes: readonly number[],
  kvBytesPerToken: number,
): number {
  const weights = residentSizesBytes.reduce((a, b) => a + b, 0);
  const left = memoryGb * GB - osReserveGb(memoryGb) * GB - weights;
  const share = left / Math.max(1, residentSizesBytes.length);
  return Math.max(0, kvTokensFitting(share, kvBytesPerToken));
}

/** Whole KV tokens that fit in `bytes` (negative when `bytes` is: callers decide whether to clamp). */
export function kvTokensFitting(bytes: number, kvBytesPerToken: number): number {
  return Math.floor(bytes / kvBytesPerToken);
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
