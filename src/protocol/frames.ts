/**
 * Pure mapping from the generated protobuf messages a provider sends to the coordinator's domain types (the
 * frames the coordinator sends are built in coordinator-frames.ts). This file and the rest of src/protocol/ are the
 * only code that imports gen/.
 *
 * It is also the trust edge for values: every string and number a provider sends is checked against
 * {@link wireBounds} here, and a frame that breaks one throws {@link ProtocolViolation} (the session is then
 * closed). Plausibility of capability claims (rates, memory, budgets) is judged later, in
 * registry/claim-bounds.ts, against the machine's chip class.
 */
import {
  ErrorReason,
  FinishReason as PbFinishReason,
  ProviderStatus as PbProviderStatus,
  SlotState as PbSlotState,
  ThermalState as PbThermalState,
  type Heartbeat,
  type InferenceChunk,
  type InferenceComplete,
  type InferenceError,
  type Register,
} from "../../gen/coordinator/provider/v1/provider_pb.js";
import type { Delta, FinishReason, ProviderErrorReason, ProviderEvent } from "../inference/types.js";
import type {
  ProviderHeartbeat,
  ProviderRegistration,
  ProviderStatus,
  SlotState,
  ThermalState,
} from "../registry/types.js";
import {
  checkCount,
  checkLabel,
  checkModelId,
  checkSerial,
  checkUint64,
  ProtocolViolation,
  sanitizeText,
  wireBounds,
} from "./wire-bounds.js";

/** What a Register frame tells us: the registration plus the token to authenticate and the machine's key. */
export type RegistrationInfo = Omit<ProviderRegistration, "accountId"> & { authToken: string; publicKey: Uint8Array };

/** Ed25519 public keys are 32 bytes. */
const ED25519_PUBLIC_KEY_BYTES = 32;
/** KV budgets and bytes per token are kept below 2^40: far above any Mac, and exact in a double. */
const MAX_BUDGET_TOKENS = 2 ** 40;

/** Validates a Register frame (throws {@link ProtocolViolation}). */
export function registrationFromFrame(r: Register): RegistrationInfo {
  const hw = r.hardware;
  if (r.authToken.length > wireBounds.maxAuthTokenChars) throw new ProtocolViolation("auth_token", "too long");
  if (r.publicKey.length !== ED25519_PUBLIC_KEY_BYTES)
    throw new ProtocolViolation("public_key", "an Ed25519 public key (32 bytes) is required");
  if (r.models.length > wireBounds.maxModelsPerProvider)
    throw new ProtocolViolation("models", `more than ${wireBounds.maxModelsPerProvider} models`);
  const seen = new Set<string>();
  const models = r.models.map((m, i) => {
    const id = checkModelId(m.id, `models[${i}].id`);
    if (seen.has(id)) throw new ProtocolViolation(`models[${i}].id`, "duplicated");
    seen.add(id);
    return {
      id,
      sizeBytes: checkUint64(m.sizeBytes, `models[${i}].size_bytes`, wireBounds.maxModelBytes),
      quantization: checkLabel(m.quantization, `models[${i}].quantization`),
      contextLength: checkCount(m.contextLength, `models[${i}].context_length`, wireBounds.maxContextTokens),
      isVision: m.isVision,
      templateRenderOk: m.templateRenderOk,
    };
  });
  return {
    authToken: r.authToken,
    publicKey: r.publicKey,
    serial: checkSerial(r.serial),
    version: checkLabel(r.version, "version", 32),
    hardware: {
      chipName: checkLabel(hw?.chipName ?? "", "hardware.chip_name"),
      chipFamily: checkLabel(hw?.chipFamily ?? "", "hardware.chip_family"),
      memoryGb: finite(hw?.memoryGb),
      memoryBandwidthGbs: finite(hw?.memoryBandwidthGbs),
      gpuCores: hw?.gpuCores ?? 0,
    },
    decodeTps: finite(r.decodeTps),
    prefillTps: finite(r.prefillTps),
    maxModelSlots: Math.min(wireBounds.maxModelsPerProvider, Math.max(1, r.maxModelSlots || 1)),
    models,
    privateOnly: r.privateOnly,
  };
}

/** Validates a Heartbeat frame (throws {@link ProtocolViolation}). */
export function heartbeatFromFrame(h: Heartbeat): ProviderHeartbeat {
  const slots = h.capacity?.slots ?? [];
  if (slots.length > wireBounds.maxModelsPerProvider)
    throw new ProtocolViolation("capacity.slots", `more than ${wireBounds.maxModelsPerProvider} slots`);
  if (h.warmModels.length > wireBounds.maxModelsPerProvider)
    throw new ProtocolViolation("warm_models", `more than ${wireBounds.maxModelsPerProvider} models`);
  const max = wireBounds.maxSlotCounter;
  return {
    status: providerStatus(h.status),
    memoryPressure: clamp01(h.system?.memoryPressure),
    cpuUsage: clamp01(h.system?.cpuUsage),
    thermal: thermalState(h.system?.thermalState),
    totalMemoryGb: finite(h.capacity?.totalMemoryGb),
    freeForLoadGb: h.capacity?.freeForLoadGb === undefined ? undefined : finite(h.capacity.freeForLoadGb),
    slots: slots.map((s, i) => ({
      model: checkModelId(s.model, `capacity.slots[${i}].model`),
      state: slotState(s.state),
      numRunning: checkCount(s.numRunning, `capacity.slots[${i}].num_running`, max),
      numWaiting: checkCount(s.numWaiting, `capacity.slots[${i}].num_waiting`, max),
      maxConcurrency: checkCount(s.maxConcurrency, `capacity.slots[${i}].max_concurrency`, max),
      // Budgets are claims, clamped to what the machine can physically hold in registry/claim-bounds.ts.
      tokenBudgetUsed: Number(
        s.activeTokenBudgetUsed > BigInt(MAX_BUDGET_TOKENS) ? BigInt(MAX_BUDGET_TOKENS) : s.activeTokenBudgetUsed,
      ),
      tokenBudgetMax: Number(
        s.activeTokenBudgetMax > BigInt(MAX_BUDGET_TOKENS) ? BigInt(MAX_BUDGET_TOKENS) : s.activeTokenBudgetMax,
      ),
      kvBytesPerToken: Number(
        s.kvBytesPerToken > BigInt(MAX_BUDGET_TOKENS) ? BigInt(MAX_BUDGET_TOKENS) : s.kvBytesPerToken,
      ),
      observedDecodeTps: finite(s.observedDecodeTps),
      observedPrefillTps: finite(s.observedPrefillTps),
      modelLoadTimeMs: s.modelLoadTimeMs,
    })),
    warmModels: h.warmModels.map((m, i) => checkModelId(m, `warm_models[${i}]`)),
  };
}

/** The typed deltas of a chunk (throws {@link ProtocolViolation} past the per-chunk bounds). */
export function deltasFromChunk(c: InferenceChunk): Delta[] {
  if (c.deltas.length > wireBounds.maxDeltasPerChunk)
    throw new ProtocolViolation("inference_chunk.deltas", `more than ${wireBounds.maxDeltasPerChunk} deltas`);
  const out: Delta[] = [];
  let text = 0;
  for (const d of c.deltas) {
    const v = d.delta;
    if (v.case === "content" || v.case === "reasoning") text += v.value.length;
    else if (v.case === "toolCall") text += v.value.arguments.length;
    if (text > wireBounds.maxChunkTextChars)
      throw new ProtocolViolation(
        "inference_chunk.deltas",
        `more than ${wireBounds.maxChunkTextChars} characters of text`,
      );
    switch (v.case) {
      case "role":
        out.push({ kind: "role", role: checkLabel(v.value, "delta.role", wireBounds.maxRoleChars) });
        break;
      case "content":
        if (v.value !== "") out.push({ kind: "content", text: v.value });
        break;
      case "reasoning":
        if (v.value !== "") out.push({ kind: "reasoning", text: v.value });
        break;
      case "toolCall": {
        const t = v.value;
        const delta: Delta = {
          kind: "tool_call",
          index: checkCount(t.index, "delta.tool_call.index", wireBounds.maxToolCallIndex),
        };
        if (t.id) delta.id = checkLabel(t.id, "delta.tool_call.id", wireBounds.maxToolCallIdChars);
        if (t.name) delta.name = checkLabel(t.name, "delta.tool_call.name", wireBounds.maxToolNameChars);
        if (t.arguments) delta.arguments = t.arguments;
        out.push(delta);
        break;
      }
      default:
        break; // an empty or future delta kind: ignore rather than fail the stream
    }
  }
  return out;
}

/**
 * The provider's completion with its claimed usage. A count no single request can reach is refused: the event
 * says so in `usageRefused` (with zero usage), so the request still completes, billed at the coordinator's own
 * count, and the caller ends the session. The claim is only a claim either way: dispatch bills the
 * coordinator's own count where they disagree.
 */
export function completeFromFrame(c: InferenceComplete): ProviderEvent & { kind: "complete" } {
  const max = wireBounds.maxUsageTokens;
  const base = { kind: "complete" as const, finishReason: finishReason(c.finishReason) };
  try {
    return {
      ...base,
      usage: {
        promptTokens: checkCount(c.usage?.promptTokens ?? 0, "usage.prompt_tokens", max),
        completionTokens: checkCount(c.usage?.completionTokens ?? 0, "usage.completion_tokens", max),
        reasoningTokens: checkCount(c.usage?.reasoningTokens ?? 0, "usage.reasoning_tokens", max),
      },
    };
  } catch (e) {
    if (!(e instanceof ProtocolViolation)) throw e;
    return { ...base, usage: { promptTokens: 0, completionTokens: 0, reasoningTokens: 0 }, usageRefused: e.message };
  }
}

/** A provider's error; status outside 400..599 reads as 500, and the message is cut and stripped of controls. */
export function errorFromFrame(e: InferenceError): ProviderEvent & { kind: "error" } {
  const status = e.statusCode >= 400 && e.statusCode <= 599 ? e.statusCode : 500;
  return {
    kind: "error",
    statusCode: status,
    message: sanitizeText(e.message) || "provider error",
    reason: errorReason(e.reason),
  };
}

function finishReason(f: PbFinishReason): FinishReason {
  switch (f) {
    case PbFinishReason.LENGTH:
      return "length";
    case PbFinishReason.TOOL_CALLS:
      return "tool_calls";
    case PbFinishReason.CONTENT_FILTER:
      return "content_filter";
    default:
      return "stop";
  }
}

const errorReasons: Record<number, ProviderErrorReason> = {
  [ErrorReason.CONTEXT_OVERFLOW]: "context_overflow",
  [ErrorReason.CAPACITY]: "capacity",
  [ErrorReason.MODEL_LOAD_FAILED]: "model_load_failed",
  [ErrorReason.INSUFFICIENT_MEMORY]: "insufficient_memory",
  [ErrorReason.TEMPLATE]: "template",
  [ErrorReason.INTERNAL]: "internal",
  [ErrorReason.CANCELLED]: "cancelled",
  [ErrorReason.DRAINING]: "draining",
  [ErrorReason.INVALID_REQUEST]: "invalid_request",
};

function errorReason(r: ErrorReason): ProviderErrorReason {
  return errorReasons[r] ?? "unspecified";
}

function providerStatus(s: PbProviderStatus): ProviderStatus {
  if (s === PbProviderStatus.DRAINING) return "draining";
  if (s === PbProviderStatus.SERVING) return "serving";
  return "idle";
}

function thermalState(t: PbThermalState | undefined): ThermalState {
  switch (t) {
    case PbThermalState.FAIR:
      return "fair";
    case PbThermalState.SERIOUS:
      return "serious";
    case PbThermalState.CRITICAL:
      return "critical";
    default:
      return "nominal";
  }
}

function slotState(s: PbSlotState): SlotState {
  switch (s) {
    case PbSlotState.RUNNING:
      return "running";
    case PbSlotState.LOADING:
      return "loading";
    case PbSlotState.CRASHED:
      return "crashed";
    default:
      return "idle";
  }
}

function finite(n: number | undefined): number {
  return typeof n === "number" && Number.isFinite(n) && n > 0 ? n : 0;
}

function clamp01(n: number | undefined): number {
  return Math.min(1, finite(n));
}
