/**
 * One connected provider as the registry keeps it: what it last reported (Register, Heartbeat), clamped to the
 * physical bounds of the hardware it names, plus the coordinator's own accounting of work dispatched there.
 * Mutated in place by {@link ProviderRegistry}; everyone else reads it as a {@link ProviderView}.
 */
import { defaultCatalog } from "../models/catalog.js";
import type { RequestId } from "../inference/types.js";
import { count } from "../telemetry/metrics.js";
import { clampRegistration, type ClaimModel, type ClampedClaim } from "./claim-bounds.js";
import type {
  HardwareInfo,
  InflightRequest,
  ModelRates,
  ModelSlot,
  ProviderId,
  ProviderModel,
  ProviderRegistration,
  ProviderStatus,
  ProviderView,
  ThermalState,
} from "./types.js";

/** A mutable provider record; exposed to readers as {@link ProviderView}. */
export class ProviderRecord implements ProviderView {
  readonly id: ProviderId;
  readonly serial: string;
  readonly accountId: string;
  readonly version: string;
  readonly hardware: HardwareInfo;
  readonly decodeTps: number;
  readonly prefillTps: number;
  readonly maxModelSlots: number;
  readonly models: ProviderModel[];
  readonly privateOnly: boolean;
  readonly connectedAtMs: number;
  status: ProviderStatus = "idle";
  memoryPressure = 0;
  cpuUsage = 0;
  thermal: ThermalState = "nominal";
  totalMemoryGb: number;
  freeForLoadGb: number | undefined = undefined;
  slots: ModelSlot[] = [];
  warmModels: string[] = [];
  lastHeartbeatMs: number;
  readonly inflight = new Map<RequestId, InflightRequest>();
  readonly pendingLoads = new Map<string, number>();
  /** Per advertised model: physical rate ceilings and the coordinator's own measurements. */
  readonly modelRates: Map<string, ModelRates>;
  /** Multiplies the scheduler's cost estimate (1 = none); see {@link ProviderRegistry.setCostPenalty}. */
  costPenaltyFactor = 1;
  /** Register claims clamped to physical bounds (empty for an honest Mac), for the caller to log. */
  readonly claimsClamped: readonly ClampedClaim[];
  /** See {@link ProviderView.pool}; set only by the registry (setPool, mirror), which counts each pool's members. */
  pool: string | undefined = undefined;
  heartbeats = 0;
  /** See {@link ProviderView.remote}; set by {@link ProviderRegistry.mirror}, a record is never both. */
  remote = false;

  /** `claimed` is clamped to the bounds of the hardware it names (claim-bounds.ts) before anything is kept. */
  constructor(
    id: ProviderId,
    claimed: ProviderRegistration,
    nowMs: number,
    catalog: readonly ClaimModel[] = defaultCatalog,
  ) {
    const { registration: r, clamped, rates } = clampRegistration(claimed, catalog);
    this.claimsClamped = clamped;
    this.modelRates = rates;
    countClamped(clamped, "register");
    this.id = id;
    this.serial = r.serial;
    this.accountId = r.accountId;
    this.version = r.version;
    this.hardware = r.hardware;
    this.decodeTps = r.decodeTps;
    this.prefillTps = r.prefillTps;
    this.maxModelSlots = r.maxModelSlots;
    this.models = r.models;
    this.privateOnly = r.privateOnly === true;
    this.connectedAtMs = nowMs;
    this.lastHeartbeatMs = nowMs;
    this.totalMemoryGb = r.hardware.memoryGb;
  }

  servesModel(model: string): boolean {
    return this.models.some((m) => m.id === model);
  }
}

/** Counts clamped claims, one per field (tags are closed sets: the field and where it came from). */
export function countClamped(clamped: readonly ClampedClaim[], source: "register" | "heartbeat"): void {
  for (const c of clamped) count("provider.claims_clamped", { source, field: c.field });
}
