/**
 * A Mac as its owning coordinator publishes it to the cluster's fleet view (KV bucket, one key per Mac): who owns
 * the stream (node + session), what the Mac registered, and the owner's live view of it (ProviderRegistry.mirror
 * applies it on the other nodes). JSON; decoding checks the shape before anything reaches the registry.
 */
import type { ProviderRecord } from "../registry/provider-registry.js";
import type { MirroredState, ProviderRegistration } from "../registry/types.js";

export interface ProviderSnapshot {
  v: 1;
  /** The owning node, and the owner's session of this Mac (a new stream, on any node, is a new session). */
  node: string;
  session: string;
  providerId: string;
  registration: ProviderRegistration;
  state: MirroredState;
}

/** The owner's snapshot of one of its Macs. */
export function snapshotOf(rec: ProviderRecord, node: string, session: string): ProviderSnapshot {
  return {
    v: 1,
    node,
    session,
    providerId: rec.id,
    registration: {
      serial: rec.serial,
      accountId: rec.accountId,
      version: rec.version,
      hardware: rec.hardware,
      decodeTps: rec.decodeTps,
      prefillTps: rec.prefillTps,
      maxModelSlots: rec.maxModelSlots,
      models: rec.models,
      privateOnly: rec.privateOnly,
    },
    state: {
      status: rec.status,
      memoryPressure: rec.memoryPressure,
      cpuUsage: rec.cpuUsage,
      thermal: rec.thermal,
      totalMemoryGb: rec.totalMemoryGb,
      freeForLoadGb: rec.freeForLoadGb,
      slots: rec.slots,
      warmModels: rec.warmModels,
      pool: rec.pool,
      // Mirrors of other owners never appear here: only the owner's own Macs are published.
      inflight: [...rec.inflight.values()].map(({ mirrored: _m, ...r }) => r),
      pendingLoads: [...rec.pendingLoads.keys()],
    },
  };
}

/**
 * What changes a snapshot enough to publish it before the periodic refresh: a heartbeat, work starting or ending,
 * a load, a pool move. Streamed token counts alone do not (they would publish on every chunk).
 */
export function snapshotFingerprint(rec: ProviderRecord): string {
  let started = 0;
  for (const r of rec.inflight.values()) if (r.startedByProvider) started++;
  return `${rec.heartbeats}|${rec.inflight.size}|${started}|${rec.pendingLoads.size}|${rec.pool ?? ""}|${rec.status}`;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
const isNumber = (v: unknown) => Number.isFinite(v);
const isString = (v: unknown) => typeof v === "string";

const SLOT_NUMBERS = [
  "numRunning",
  "numWaiting",
  "maxConcurrency",
  "tokenBudgetUsed",
  "tokenBudgetMax",
  "kvBytesPerToken",
  "observedDecodeTps",
  "observedPrefillTps",
  "modelLoadTimeMs",
] as const;
const INFLIGHT_NUMBERS = ["reservedTokens", "usedTokens", "remainingOutputTokens", "startedAtMs"] as const;

/** Slots and in-flight entries go into the registry and the scheduler's arithmetic as they are: no NaN. */
const isSlot = (v: unknown) =>
  isObject(v) && isString(v.model) && isString(v.state) && SLOT_NUMBERS.every((k) => isNumber(v[k]));
const isInflight = (v: unknown) =>
  isObject(v) &&
  isString(v.requestId) &&
  isString(v.model) &&
  typeof v.seenByProvider === "boolean" &&
  INFLIGHT_NUMBERS.every((k) => isNumber(v[k]));

/** What the registry's record reads of a registration (a missing one would throw in the mirror). */
const isModel = (v: unknown) =>
  isObject(v) && isString(v.id) && isNumber(v.sizeBytes) && isString(v.quantization) && isNumber(v.contextLength);
const isHardware = (v: unknown) =>
  isObject(v) &&
  isString(v.chipName) &&
  isString(v.chipFamily) &&
  ["memoryGb", "memoryBandwidthGbs", "gpuCores"].every((k) => isNumber(v[k]));
const REGISTRATION_NUMBERS = ["decodeTps", "prefillTps", "maxModelSlots"] as const;

/** Parses a published snapshot; undefined for anything that is not one. */
export function decodeSnapshot(json: string): ProviderSnapshot | undefined {
  try {
    return checkSnapshot(JSON.parse(json));
  } catch {
    return undefined;
  }
}

/** The value if it has a snapshot's shape (e.g. one carried inside an owner's refusal), else undefined. */
export function checkSnapshot(v: unknown): ProviderSnapshot | undefined {
  if (!isObject(v) || v.v !== 1) return undefined;
  const { node, session, providerId, registration: r, state: s } = v;
  if (typeof node !== "string" || typeof session !== "string" || typeof providerId !== "string") return undefined;
  if (!isObject(r) || typeof r.serial !== "string" || typeof r.accountId !== "string" || !Array.isArray(r.models))
    return undefined;
  if (!isHardware(r.hardware) || !r.models.every(isModel) || !isString(r.version)) return undefined;
  if (!REGISTRATION_NUMBERS.every((k) => isNumber(r[k]))) return undefined;
  if (!isObject(s) || !Array.isArray(s.slots) || !Array.isArray(s.inflight) || !Array.isArray(s.pendingLoads))
    return undefined;
  if (!Array.isArray(s.warmModels) || typeof s.status !== "string") return undefined;
  if (!s.slots.every(isSlot) || !s.inflight.every(isInflight)) return undefined;
  if (!s.warmModels.every(isString) || !s.pendingLoads.every(isString)) return undefined;
  return v as unknown as ProviderSnapshot;
}
