/** Records for registry and cluster tests: a plausible Mac, its slots, a mirrored state and in-flight entries. */
import type { ProviderRegistration } from "../../../src/registry/provider-registry.js";
import type { InflightRequest, MirroredState, ModelSlot } from "../../../src/registry/types.js";

export const MODEL = "gpt-oss-20b";

export const registration = (serial: string, models = [MODEL]): ProviderRegistration => ({
  serial,
  accountId: "acct",
  version: "0.7.0",
  hardware: { chipName: "Apple M4 Max", chipFamily: "M4", memoryGb: 64, memoryBandwidthGbs: 546, gpuCores: 40 },
  decodeTps: 70,
  prefillTps: 2000,
  maxModelSlots: 2,
  models: models.map((id) => ({
    id,
    sizeBytes: 12e9,
    quantization: "q4",
    contextLength: 131072,
    isVision: false,
    templateRenderOk: undefined,
  })),
});

export const slot = (o: Partial<ModelSlot> = {}): ModelSlot => ({
  model: MODEL,
  state: "running",
  numRunning: 1,
  numWaiting: 0,
  maxConcurrency: 8,
  tokenBudgetUsed: 1000,
  tokenBudgetMax: 100_000,
  kvBytesPerToken: 49_152,
  observedDecodeTps: 70,
  observedPrefillTps: 2000,
  modelLoadTimeMs: 4000,
  ...o,
});

export const heartbeat = (slots: ModelSlot[]) => ({
  status: "serving" as const,
  memoryPressure: 0.2,
  cpuUsage: 0.1,
  thermal: "nominal" as const,
  totalMemoryGb: 64,
  freeForLoadGb: 20,
  slots,
  warmModels: [MODEL],
});

export const inflight = (requestId: string, o: Partial<InflightRequest> = {}): InflightRequest => ({
  requestId,
  model: MODEL,
  reservedTokens: 1000,
  usedTokens: 100,
  remainingOutputTokens: 900,
  startedAtMs: 0,
  seenByProvider: false,
  ...o,
});

export const mirroredState = (o: Partial<MirroredState> = {}): MirroredState => ({
  ...heartbeat([slot()]),
  pool: undefined,
  inflight: [],
  pendingLoads: [],
  ...o,
});
