/** Builders for scheduler tests: small, explicit snapshots. */
import type {
  InflightRequest,
  ModelSlot,
  ProviderModel,
  ProviderView,
  RegistryView,
} from "../../../src/registry/types.js";
import type { SchedulerCatalogModel } from "../../../src/scheduler/pick.js";
import type { HealthGates, RouteRequest } from "../../../src/scheduler/types.js";
import { shapeOf } from "../../../src/inference/types.js";

export const GB = 1_000_000_000;

export const catalog: SchedulerCatalogModel[] = [
  {
    id: "gemma",
    defaultMaxTokens: 8192,
    contextLength: 131_072,
    sizeBytes: 16 * GB,
    isVision: true,
    kvBytesPerToken: 172_032,
  },
  {
    id: "oss",
    defaultMaxTokens: 8192,
    contextLength: 131_072,
    sizeBytes: 12 * GB,
    isVision: false,
    kvBytesPerToken: 49_152,
  },
  {
    id: "offline-model",
    defaultMaxTokens: 8192,
    contextLength: 8192,
    sizeBytes: 5 * GB,
    isVision: false,
    kvBytesPerToken: 100_000,
  },
];

export function build(id: string, over: Partial<ProviderModel> = {}): ProviderModel {
  const c = catalog.find((m) => m.id === id);
  return {
    id,
    sizeBytes: c?.sizeBytes ?? 5 * GB,
    quantization: "4bit",
    contextLength: c?.contextLength ?? 32_768,
    isVision: c?.isVision ?? false,
    templateRenderOk: undefined,
    ...over,
  };
}

export function slot(model: string, over: Partial<ModelSlot> = {}): ModelSlot {
  return {
    model,
    state: "idle",
    numRunning: 0,
    numWaiting: 0,
    maxConcurrency: 16,
    tokenBudgetUsed: 0,
    tokenBudgetMax: 150_000,
    kvBytesPerToken: 172_032,
    observedDecodeTps: 45,
    observedPrefillTps: 400,
    modelLoadTimeMs: 12_000,
    ...over,
  };
}

export type ProviderOver = Omit<Partial<ProviderView>, "inflight" | "pendingLoads"> & {
  inflight?: InflightRequest[];
  pendingLoads?: [string, number][];
};

export function provider(id: string, over: ProviderOver = {}): ProviderView {
  const { inflight, pendingLoads, ...rest } = over;
  return {
    id,
    serial: id,
    accountId: "acct-1",
    version: "0.7.0",
    hardware: { chipName: "Apple M2 Max", chipFamily: "M2", memoryGb: 64, memoryBandwidthGbs: 400, gpuCores: 38 },
    decodeTps: 45,
    prefillTps: 400,
    maxModelSlots: 1,
    models: [build("gemma"), build("oss")],
    status: "idle",
    memoryPressure: 0,
    cpuUsage: 0,
    thermal: "nominal",
    totalMemoryGb: 64,
    freeForLoadGb: undefined,
    slots: [],
    warmModels: [],
    lastHeartbeatMs: 0,
    connectedAtMs: 0,
    ...rest,
    inflight: new Map((inflight ?? []).map((r) => [r.requestId, r])),
    pendingLoads: new Map(pendingLoads ?? []),
  };
}

export function inflight(requestId: string, model: string, over: Partial<InflightRequest> = {}): InflightRequest {
  return {
    requestId,
    model,
    reservedTokens: 2000,
    usedTokens: 1000,
    remainingOutputTokens: 1000,
    startedAtMs: 0,
    seenByProvider: true,
    ...over,
  };
}

export function request(
  model: string,
  over: Partial<RouteRequest["traits"]> & {
    exclude?: string[];
    avoidVersion?: string;
    affinityKey?: string;
    pinnedAccountId?: string;
  } = {},
): RouteRequest {
  const { exclude, avoidVersion, affinityKey, pinnedAccountId, ...traitsOver } = over;
  const traits = {
    maxTokens: 4096,
    estimatedPromptTokens: 1000,
    hasTools: false,
    requiresVision: false,
    stream: true,
    ...traitsOver,
  };
  const r: RouteRequest = {
    requestId: "req_1",
    model,
    traits,
    shape: shapeOf(traits),
    exclude: new Set(exclude ?? []),
  };
  if (avoidVersion !== undefined) r.avoidVersion = avoidVersion;
  if (affinityKey !== undefined) r.affinityKey = affinityKey;
  if (pinnedAccountId !== undefined) r.pinnedAccountId = pinnedAccountId;
  return r;
}

export function healthy(over: Partial<HealthGates> = {}): HealthGates {
  return { isCooledDown: () => false, isLoadCooledDown: () => false, ...over };
}

/** An estimator that always expects `n` output tokens (bounded by max_tokens). */
export function fixedEstimator(n: number) {
  return { expected: (_k: string, max: number) => Math.min(max, n) };
}

export function view(...providers: ProviderView[]): RegistryView {
  return { providers };
}
