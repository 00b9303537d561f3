/**
 * What the coordinator knows about each connected provider: the last Register and Heartbeat it sent, plus the
 * coordinator's own accounting of work it has dispatched there. Pure data shared by the registry (which
 * mutates it) and the scheduler (which reads snapshots of it).
 */
import type { RequestId } from "../inference/types.js";

export type ProviderId = string;

export type ThermalState = "nominal" | "fair" | "serious" | "critical";
export type SlotState = "running" | "idle" | "loading" | "crashed";
export type ProviderStatus = "idle" | "serving" | "draining";

export interface HardwareInfo {
  chipName: string;
  chipFamily: string;
  memoryGb: number;
  memoryBandwidthGbs: number;
  gpuCores: number;
}

/** A model build the provider has on disk. */
export interface ProviderModel {
  id: string;
  sizeBytes: number;
  quantization: string;
  contextLength: number;
  isVision: boolean;
  /** undefined = no opinion; false = the build's chat template is broken (fence it for every shape). */
  templateRenderOk: boolean | undefined;
}

/** A loaded model as the provider last reported it. */
export interface ModelSlot {
  model: string;
  state: SlotState;
  numRunning: number;
  numWaiting: number;
  maxConcurrency: number;
  /** KV token budget held by admitted requests, and its maximum (0 = not reported). */
  tokenBudgetUsed: number;
  tokenBudgetMax: number;
  /** Architecture-exact KV bytes per token (0 = not reported). */
  kvBytesPerToken: number;
  observedDecodeTps: number;
  observedPrefillTps: number;
  modelLoadTimeMs: number;
}

/** A request the coordinator has dispatched to a provider and not yet seen finish. */
export interface InflightRequest {
  requestId: RequestId;
  model: string;
  /** Tokens reserved against the slot's KV budget at admission (prompt + expected output). */
  reservedTokens: number;
  /** Tokens actually used so far (prompt + generated), updated as chunks stream. */
  usedTokens: number;
  /** Expected tokens still to generate, for backlog estimates. */
  remainingOutputTokens: number;
  /**
   * The request's prompt tokens (estimate). While `usedTokens <= promptTokens` no output has streamed yet, so
   * the request is still waiting for (or in) its prefill, which the Mac runs one at a time: the scheduler
   * counts these as prefill work ahead of a newcomer. Absent = unknown (no prefill backlog counted).
   */
  promptTokens?: number;
  startedAtMs: number;
  /** True once the provider has sent any frame for this request (it has started working on it). */
  startedByProvider?: boolean;
  /**
   * True once a heartbeat sent after the provider started the request has arrived: from then on the
   * provider's own slot numbers include it, so the coordinator stops counting it on top (no double count,
   * and no gap either: a heartbeat that merely crossed the InferenceRequest on the wire does not count).
   */
  seenByProvider: boolean;
  /**
   * Cluster mode: the entry is a copy of another coordinator's accounting of its own Mac (the owner's last
   * snapshot), replaced wholesale by the next snapshot. Entries without it are this process's own dispatches.
   */
  mirrored?: boolean;
}

/**
 * The coordinator's rate facts for one model on one provider (registry/claim-bounds.ts, observed-rates.ts):
 * the scheduler uses the measurement when there is one, else the provider's claim capped at the ceiling.
 */
export interface ModelRates {
  /** Physical ceilings for the model on this Mac's chip tier, tok/s. */
  decodeTpsCeiling: number;
  prefillTpsCeiling: number;
  /** EWMA of rates the coordinator measured itself (decode as a solo rate), tok/s; undefined until measured. */
  measuredDecodeTps: number | undefined;
  measuredPrefillTps: number | undefined;
}

/** The scheduler's read-only view of one provider. */
export interface ProviderView {
  id: ProviderId;
  serial: string;
  accountId: string;
  version: string;
  hardware: HardwareInfo;
  /** Benchmarked single-stream rates from Register. */
  decodeTps: number;
  prefillTps: number;
  maxModelSlots: number;
  models: readonly ProviderModel[];
  status: ProviderStatus;
  memoryPressure: number;
  cpuUsage: number;
  thermal: ThermalState;
  totalMemoryGb: number;
  /** Provider-computed max loadable weight now (GiB); undefined when not reported. */
  freeForLoadGb: number | undefined;
  slots: readonly ModelSlot[];
  warmModels: readonly string[];
  lastHeartbeatMs: number;
  connectedAtMs: number;
  /** Requests dispatched here and not finished (coordinator's own accounting). */
  inflight: ReadonlyMap<RequestId, InflightRequest>;
  /** Models with an outstanding LoadModel, with the time it was sent. */
  pendingLoads: ReadonlyMap<string, number>;
  /** Rate ceilings and measurements per advertised model (absent in hand-built views: claims used as is). */
  modelRates?: ReadonlyMap<string, ModelRates>;
  /** Multiplies the scheduler's cost estimate (≥ 1; default 1), e.g. for a provider caught over-claiming usage. */
  costPenaltyFactor?: number;
  /**
   * The model pool (an alias, or a build no alias names) this provider serves while pools are on; undefined
   * until it is seeded from its first heartbeat (scheduler/model-pools.ts). Absent in hand-built views.
   */
  pool?: string | undefined;
  /** Serves only requests of its owner's account (Register.private_only); never pooled. */
  privateOnly?: boolean;
  /** Heartbeats received this session: a pool is seeded only from what a heartbeat reports resident. */
  heartbeats?: number;
  /**
   * Cluster mode: another coordinator owns this Mac's stream (a mirror, {@link ProviderRegistry.mirror}), so
   * choosing it costs a forward over NATS; near-ties go to Macs this process owns (choose-in-tier.ts).
   */
  remote?: boolean;
}

/** A snapshot of the registry handed to the scheduler. */
export interface RegistryView {
  readonly providers: readonly ProviderView[];
  /** Providers by advertised model (the registry maintains it); lets a pick skip the rest of the fleet. */
  readonly byModel?: ReadonlyMap<string, readonly ProviderView[]>;
  /** Providers holding the model loaded (running or idle slot) as of their last heartbeat. */
  readonly warmByModel?: ReadonlyMap<string, readonly ProviderView[]>;
}

/** How the registry describes a new session (decoupled from the wire types; protocol/frames.ts maps frames to it). */
export interface ProviderRegistration {
  serial: string;
  accountId: string;
  version: string;
  hardware: HardwareInfo;
  decodeTps: number;
  prefillTps: number;
  maxModelSlots: number;
  models: ProviderModel[];
  /** The owner keeps the machine to itself: it serves only its own account's requests and joins no pool. */
  privateOnly?: boolean;
}

/**
 * Cluster mode: what the coordinator that owns a Mac's stream publishes about it, for the others to mirror
 * ({@link ProviderRegistry.mirror}): its last heartbeat as the owner applied it, plus the owner's pool and
 * accounting. The owner alone admits work on the Mac, so a mirror is a routing hint, never a booking.
 */
export interface MirroredState extends ProviderHeartbeat {
  pool: string | undefined;
  inflight: readonly InflightRequest[];
  /** Models with a LoadModel outstanding at the owner. */
  pendingLoads: readonly string[];
}

/** A heartbeat's content (decoupled from the wire types; protocol/frames.ts maps frames to it). */
export interface ProviderHeartbeat {
  status: ProviderStatus;
  memoryPressure: number;
  cpuUsage: number;
  thermal: ThermalState;
  totalMemoryGb: number;
  freeForLoadGb: number | undefined;
  slots: ModelSlot[];
  warmModels: string[];
}
