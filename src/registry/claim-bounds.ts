/**
 * Physical bounds on what a provider may claim about itself, per Apple-Silicon chip tier. Providers are
 * strangers' machines: the protocol edge (protocol/wire-bounds.ts) only keeps numbers finite, so a Register
 * claiming 1e300 tok/s decode or a 2^64-token KV budget would otherwise win most picks and be advertised by
 * `GET /v1/models/capacity`. Every claimed figure is clamped here to what the hardware it names could do at
 * best; the scheduler then replaces rates with the coordinator's own measurements once it has them
 * (observed-rates.ts).
 *
 * Derivation (all ceilings are generous: an honest Mac never comes near them):
 * - **Tier** from `chipName` ("Apple M4 Max" → max); anything that is not `Apple M<n>[ Pro| Max| Ultra]` is
 *   the base tier. Memory, bandwidth and GPU cores are Apple's largest configuration of the tier across
 *   generations (M1–M5) × {@link CLAIM_HEADROOM}.
 * - **Decode** cannot beat reading the active weights once per token:
 *   `bandwidth ÷ (weights × active fraction)`. The catalog has no active-parameter counts, so the fraction is
 *   {@link MIN_ACTIVE_WEIGHT_FRACTION} (the sparsest catalog model, gpt-oss-20b, is ~3.6B of 21B active),
 *   unless a catalog entry carries `activeWeightFraction`. Real kernels reach ~80 % of peak bandwidth and read
 *   well over the active parameters, so this is 3-8× above measured rates.
 * - **Prefill** ≤ {@link MAX_PREFILL_TO_DECODE} × the decode ceiling (measured ratios are 25-45), and once
 *   decode is measured, ≤ {@link MAX_PREFILL_TO_MEASURED_DECODE} × the measured rate (the scheduler applies it).
 * - **KV budget** ≤ (memory − weights) ÷ KV bytes per token, with KV bytes per token floored at the catalog's
 *   value ÷ {@link KV_FLOOR_DIVISOR} (or {@link MIN_KV_BYTES_PER_TOKEN} for a model outside the catalog).
 * - **Concurrency** ≤ {@link MAX_CONCURRENCY_CLAIM}.
 *
 * Weights come from the catalog when it knows the model (the advertised size is itself a claim), else the
 * advertised size floored at {@link MIN_MODEL_WEIGHT_BYTES}. Pure: no I/O, no clock.
 */
import type { HardwareInfo, ModelRates, ModelSlot, ProviderHeartbeat, ProviderRegistration } from "./types.js";

/** Apple-Silicon chip tiers, from the marketing name's suffix. */
export type ChipTier = "base" | "pro" | "max" | "ultra";

/** The most a tier's hardware can have. */
export interface TierBounds {
  memoryGb: number;
  memoryBandwidthGbs: number;
  gpuCores: number;
}

/** Multiplier on Apple's published maxima: room for a future bin without trusting anything absurd. */
export const CLAIM_HEADROOM = 1.25;

/**
 * Apple's largest configuration per tier across generations (published figures; src/tools/fleet/chip-profiles.ts
 * has the simulator's subset): base M4/M5 32 GB, M5 153 GB/s; Pro M4 Pro 64 GB, 273 GB/s, 20 GPU cores;
 * Max M3/M4 Max 128 GB, M4 Max 546 GB/s, 40 cores; Ultra M3 Ultra 512 GB, 819 GB/s, 80 cores.
 */
export const APPLE_TIER_MAXIMA: Readonly<Record<ChipTier, Readonly<TierBounds>>> = Object.freeze({
  base: Object.freeze({ memoryGb: 32, memoryBandwidthGbs: 153, gpuCores: 10 }),
  pro: Object.freeze({ memoryGb: 64, memoryBandwidthGbs: 273, gpuCores: 20 }),
  max: Object.freeze({ memoryGb: 128, memoryBandwidthGbs: 546, gpuCores: 40 }),
  ultra: Object.freeze({ memoryGb: 512, memoryBandwidthGbs: 819, gpuCores: 80 }),
});

/** Smallest fraction of a model's weights read per decoded token (MoE sparsity), absent catalog data. */
export const MIN_ACTIVE_WEIGHT_FRACTION = 0.15;
/** Prefill ceiling as a multiple of the decode ceiling. */
export const MAX_PREFILL_TO_DECODE = 40;
/**
 * Once decode is measured and prefill is not (prefill is only sampled on an otherwise idle Mac), a prefill
 * claim may not exceed this multiple of the measured decode rate: {@link MAX_PREFILL_TO_DECODE} ×
 * {@link CLAIM_HEADROOM} (the simulator's profiles run 25-45).
 */
export const MAX_PREFILL_TO_MEASURED_DECODE = MAX_PREFILL_TO_DECODE * CLAIM_HEADROOM;
/** A slot's KV bytes per token may not be below the catalog's value divided by this. */
export const KV_FLOOR_DIVISOR = 4;
/** KV bytes-per-token floor for a model outside the catalog. */
export const MIN_KV_BYTES_PER_TOKEN = 4_096;
/** Weights floor for a model outside the catalog, bytes (a 0.5B model at 4 bits). */
export const MIN_MODEL_WEIGHT_BYTES = 250_000_000;
/** Most concurrent requests a slot may claim (the scheduler caps lower still: maxConcurrencyCeiling). */
export const MAX_CONCURRENCY_CLAIM = 64;

const GB = 1e9;
const GIB = 2 ** 30;

/** The tier's bounds with {@link CLAIM_HEADROOM} applied. */
export function tierBounds(tier: ChipTier): TierBounds {
  const m = APPLE_TIER_MAXIMA[tier];
  return {
    memoryGb: m.memoryGb * CLAIM_HEADROOM,
    memoryBandwidthGbs: m.memoryBandwidthGbs * CLAIM_HEADROOM,
    gpuCores: Math.ceil(m.gpuCores * CLAIM_HEADROOM),
  };
}

const CHIP_NAME = /^Apple M\d{1,2}(?: (Pro|Max|Ultra))?$/i;

/** The tier a chip name belongs to; anything unrecognised is "base" (the tightest bounds). */
export function chipTier(chipName: string): ChipTier {
  const m = CHIP_NAME.exec(chipName.trim());
  const suffix = m?.[1]?.toLowerCase();
  return suffix === "pro" || suffix === "max" || suffix === "ultra" ? suffix : "base";
}

/** A model as the bounds see it: a catalog entry (the structural subset of models/catalog.ts's CatalogEntry). */
export interface ClaimModel {
  id: string;
  sizeBytes: number;
  kvBytesPerToken?: number;
  /** Fraction of the weights read per decoded token (MoE active share); default {@link MIN_ACTIVE_WEIGHT_FRACTION}. */
  activeWeightFraction?: number;
}

/** A claim field that can be clamped (snake_case: the wire names, for logs and the metric tag). */
export type ClaimField =
  | "memory_gb"
  | "memory_bandwidth_gbs"
  | "gpu_cores"
  | "decode_tps"
  | "prefill_tps"
  | "total_memory_gb"
  | "free_for_load_gb"
  | "max_concurrency"
  | "token_budget_max"
  | "token_budget_used"
  | "kv_bytes_per_token"
  | "observed_decode_tps"
  | "observed_prefill_tps";

/** One clamped claim: what the provider said and what was kept. */
export interface ClampedClaim {
  field: ClaimField;
  claimed: number;
  kept: number;
  /** The slot's model, for per-slot fields. */
  model?: string;
}

/** The ceilings for one model on one (already clamped) machine. */
export interface ModelCeilings {
  weightsBytes: number;
  decodeTps: number;
  prefillTps: number;
  kvBytesPerTokenFloor: number;
  /** Memory the KV budget may come from, bytes (whole memory minus weights; no OS reserve: generous). */
  kvMemoryBytes: number;
}

/** Hardware with every figure within its tier (a figure of 0, "not reported", stays 0). */
export function clampHardware(hw: HardwareInfo, out: ClampedClaim[] = []): HardwareInfo {
  const t = tierBounds(chipTier(hw.chipName));
  return {
    ...hw,
    memoryGb: atMost(hw.memoryGb, t.memoryGb, "memory_gb", out),
    memoryBandwidthGbs: atMost(hw.memoryBandwidthGbs, t.memoryBandwidthGbs, "memory_bandwidth_gbs", out),
    gpuCores: atMost(hw.gpuCores, t.gpuCores, "gpu_cores", out),
  };
}

/**
 * The ceilings for `model` on a machine whose hardware is `hw` (pass {@link clampHardware}'s result: figures
 * of 0 fall back to the tier maximum). `advertisedBytes` is used only for models outside the catalog.
 */
export function modelCeilings(
  hw: HardwareInfo,
  modelId: string,
  advertisedBytes: number,
  catalog: readonly ClaimModel[],
): ModelCeilings {
  const t = tierBounds(chipTier(hw.chipName));
  const entry = catalog.find((m) => m.id === modelId);
  const weightsBytes =
    entry && entry.sizeBytes > 0 ? entry.sizeBytes : Math.max(MIN_MODEL_WEIGHT_BYTES, advertisedBytes || 0);
  const fraction = entry?.activeWeightFraction ?? MIN_ACTIVE_WEIGHT_FRACTION;
  const bandwidthGbs =
    hw.memoryBandwidthGbs > 0 ? Math.min(hw.memoryBandwidthGbs, t.memoryBandwidthGbs) : t.memoryBandwidthGbs;
  const memoryGb = hw.memoryGb > 0 ? Math.min(hw.memoryGb, t.memoryGb) : t.memoryGb;
  const decodeTps = (bandwidthGbs * GB) / (weightsBytes * fraction);
  return {
    weightsBytes,
    decodeTps,
    prefillTps: decodeTps * MAX_PREFILL_TO_DECODE,
    kvBytesPerTokenFloor: entry?.kvBytesPerToken ? entry.kvBytesPerToken / KV_FLOOR_DIVISOR : MIN_KV_BYTES_PER_TOKEN,
    kvMemoryBytes: Math.max(0, memoryGb * GIB - weightsBytes),
  };
}

/** The KV token budget ceiling for a slot reporting `kvBytesPerToken` (0 = not reported: the floor is used). */
export function tokenBudgetCeiling(c: ModelCeilings, kvBytesPerToken: number): number {
  return Math.floor(c.kvMemoryBytes / Math.max(kvBytesPerToken, c.kvBytesPerTokenFloor));
}

/** A clamped Register and what was clamped. */
export interface ClampedRegistration {
  registration: ProviderRegistration;
  clamped: ClampedClaim[];
  /** Rate ceilings per advertised model, for the scheduler (no measurements yet). */
  rates: Map<string, ModelRates>;
}

/**
 * Clamps a Register: hardware to its tier, and the single-stream benchmark rates to the highest ceiling of any
 * advertised model (the scheduler also applies each model's own ceiling, from `rates`).
 */
export function clampRegistration(r: ProviderRegistration, catalog: readonly ClaimModel[]): ClampedRegistration {
  const clamped: ClampedClaim[] = [];
  const hardware = clampHardware(r.hardware, clamped);
  const rates = new Map<string, ModelRates>();
  let decodeCeiling = 0;
  for (const m of r.models) {
    const c = modelCeilings(hardware, m.id, m.sizeBytes, catalog);
    rates.set(m.id, {
      decodeTpsCeiling: c.decodeTps,
      prefillTpsCeiling: c.prefillTps,
      measuredDecodeTps: undefined,
      measuredPrefillTps: undefined,
    });
    decodeCeiling = Math.max(decodeCeiling, c.decodeTps);
  }
  if (rates.size === 0) decodeCeiling = modelCeilings(hardware, "", 0, []).decodeTps;
  const registration: ProviderRegistration = {
    ...r,
    hardware,
    decodeTps: atMost(r.decodeTps, decodeCeiling, "decode_tps", clamped),
    prefillTps: atMost(r.prefillTps, decodeCeiling * MAX_PREFILL_TO_DECODE, "prefill_tps", clamped),
  };
  return { registration, clamped, rates };
}

/** What {@link clampHeartbeat} needs to know about the provider besides the heartbeat. */
export interface HeartbeatClaimContext {
  /** The provider's clamped hardware (from its Register). */
  hardware: HardwareInfo;
  /** Advertised size of a model, bytes (0 when not advertised): only used for models outside the catalog. */
  advertisedBytes: (model: string) => number;
  catalog: readonly ClaimModel[];
  /** The coordinator's measurements for a model, if any: a reported rate may not exceed {@link MEASURED_CLAIM_FACTOR} × them. */
  measured?: (model: string) => ModelRates | undefined;
}

/** A reported observed rate may not exceed this multiple of the coordinator's own measurement. */
export const MEASURED_CLAIM_FACTOR = 1.2;

/** A clamped heartbeat and what was clamped (empty for an honest Mac). */
export interface ClampedHeartbeat {
  heartbeat: ProviderHeartbeat;
  clamped: ClampedClaim[];
}

/** Clamps a heartbeat's memory figures and every slot's claims (see the module comment). */
export function clampHeartbeat(hb: ProviderHeartbeat, ctx: HeartbeatClaimContext): ClampedHeartbeat {
  const clamped: ClampedClaim[] = [];
  const memoryGb =
    ctx.hardware.memoryGb > 0 ? ctx.hardware.memoryGb : tierBounds(chipTier(ctx.hardware.chipName)).memoryGb;
  const freeForLoadGb =
    hb.freeForLoadGb === undefined ? undefined : atMost(hb.freeForLoadGb, memoryGb, "free_for_load_gb", clamped);
  const heartbeat: ProviderHeartbeat = {
    ...hb,
    totalMemoryGb: atMost(hb.totalMemoryGb, memoryGb, "total_memory_gb", clamped),
    freeForLoadGb,
    slots: hb.slots.map((s) => clampSlot(s, ctx, clamped)),
  };
  return { heartbeat, clamped };
}

function clampSlot(s: ModelSlot, ctx: HeartbeatClaimContext, out: ClampedClaim[]): ModelSlot {
  const c = modelCeilings(ctx.hardware, s.model, ctx.advertisedBytes(s.model), ctx.catalog);
  const m = ctx.measured?.(s.model);
  const decodeCap = Math.min(
    c.decodeTps,
    m?.measuredDecodeTps !== undefined ? m.measuredDecodeTps * MEASURED_CLAIM_FACTOR : Infinity,
  );
  const prefillCap = Math.min(
    c.prefillTps,
    m?.measuredPrefillTps !== undefined ? m.measuredPrefillTps * MEASURED_CLAIM_FACTOR : Infinity,
  );
  const kv =
    s.kvBytesPerToken > 0 ? atLeast(s.kvBytesPerToken, c.kvBytesPerTokenFloor, "kv_bytes_per_token", out, s.model) : 0;
  const budget = tokenBudgetCeiling(c, kv);
  const before = out.length;
  const slot: ModelSlot = {
    ...s,
    maxConcurrency: atMost(s.maxConcurrency, MAX_CONCURRENCY_CLAIM, "max_concurrency", out),
    tokenBudgetMax: atMost(s.tokenBudgetMax, budget, "token_budget_max", out),
    tokenBudgetUsed: atMost(s.tokenBudgetUsed, budget, "token_budget_used", out),
    kvBytesPerToken: kv,
    observedDecodeTps: atMost(s.observedDecodeTps, decodeCap, "observed_decode_tps", out),
    observedPrefillTps: atMost(s.observedPrefillTps, prefillCap, "observed_prefill_tps", out),
  };
  for (let i = before; i < out.length; i++) out[i]!.model = s.model;
  return slot;
}

/** `x` within [0, max]; NaN counts as 0. Records a clamp when the value changes. */
function atMost(x: number, max: number, field: ClaimField, out: ClampedClaim[]): number {
  const kept = Number.isNaN(x) ? 0 : Math.min(Math.max(0, x), max);
  if (kept !== x) out.push({ field, claimed: x, kept });
  return kept;
}

/** `x` raised to at least `min`. Records a clamp when the value changes. */
function atLeast(x: number, min: number, field: ClaimField, out: ClampedClaim[], model: string): number {
  if (x >= min) return x;
  out.push({ field, claimed: x, kept: min, model });
  return min;
}
