/**
 * Pure mapping between the generated protobuf messages and the coordinator's domain types. This file and the
 * rest of src/protocol/ are the only code that imports gen/.
 */
import { create } from "@bufbuild/protobuf";
import {
  CoordinatorMessageSchema,
  ErrorReason,
  FinishReason as PbFinishReason,
  ProviderStatus as PbProviderStatus,
  SlotState as PbSlotState,
  ThermalState as PbThermalState,
  type CoordinatorMessage,
  type Heartbeat,
  type InferenceChunk,
  type InferenceComplete,
  type InferenceError,
  type Register,
} from "../../gen/coordinator/provider/v1/provider_pb.js";
import type { Delta, FinishReason, ProviderErrorReason, ProviderEvent, RequestTraits } from "../inference/types.js";
import type { ProviderHeartbeat, ProviderRegistration, ProviderStatus, SlotState, ThermalState } from "../registry/types.js";

/** What a Register frame tells us: the registration plus the token to authenticate. */
export type RegistrationInfo = Omit<ProviderRegistration, "accountId"> & { authToken: string };

/** Upper bound on models / slots per provider, so one misbehaving peer cannot bloat the registry. */
const MAX_MODELS = 64;

export function registrationFromFrame(r: Register): RegistrationInfo {
  const hw = r.hardware;
  return {
    authToken: r.authToken,
    serial: r.serial,
    version: r.version,
    hardware: {
      chipName: hw?.chipName ?? "",
      chipFamily: hw?.chipFamily ?? "",
      memoryGb: finite(hw?.memoryGb),
      memoryBandwidthGbs: finite(hw?.memoryBandwidthGbs),
      gpuCores: hw?.gpuCores ?? 0,
    },
    decodeTps: finite(r.decodeTps),
    prefillTps: finite(r.prefillTps),
    maxModelSlots: Math.max(1, r.maxModelSlots || 1),
    models: r.models.slice(0, MAX_MODELS).map((m) => ({
      id: m.id,
      sizeBytes: Number(m.sizeBytes),
      quantization: m.quantization,
      contextLength: m.contextLength,
      isVision: m.isVision,
      templateRenderOk: m.templateRenderOk,
    })),
  };
}

export function heartbeatFromFrame(h: Heartbeat): ProviderHeartbeat {
  return {
    status: providerStatus(h.status),
    memoryPressure: clamp01(h.system?.memoryPressure),
    cpuUsage: clamp01(h.system?.cpuUsage),
    thermal: thermalState(h.system?.thermalState),
    totalMemoryGb: finite(h.capacity?.totalMemoryGb),
    freeForLoadGb: h.capacity?.freeForLoadGb === undefined ? undefined : finite(h.capacity.freeForLoadGb),
    slots: (h.capacity?.slots ?? []).slice(0, MAX_MODELS).map((s) => ({
      model: s.model,
      state: slotState(s.state),
      numRunning: s.numRunning,
      numWaiting: s.numWaiting,
      maxConcurrency: s.maxConcurrency,
      tokenBudgetUsed: Number(s.activeTokenBudgetUsed),
      tokenBudgetMax: Number(s.activeTokenBudgetMax),
      kvBytesPerToken: Number(s.kvBytesPerToken),
      observedDecodeTps: finite(s.observedDecodeTps),
      observedPrefillTps: finite(s.observedPrefillTps),
      modelLoadTimeMs: s.modelLoadTimeMs,
    })),
    warmModels: h.warmModels.slice(0, MAX_MODELS),
  };
}

export function deltasFromChunk(c: InferenceChunk): Delta[] {
  const out: Delta[] = [];
  for (const d of c.deltas) {
    const v = d.delta;
    switch (v.case) {
      case "role":
        out.push({ kind: "role", role: v.value });
        break;
      case "content":
        if (v.value !== "") out.push({ kind: "content", text: v.value });
        break;
      case "reasoning":
        if (v.value !== "") out.push({ kind: "reasoning", text: v.value });
        break;
      case "toolCall": {
        const t = v.value;
        const delta: Delta = { kind: "tool_call", index: t.index };
        if (t.id) delta.id = t.id;
        if (t.name) delta.name = t.name;
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

export function completeFromFrame(c: InferenceComplete): ProviderEvent & { kind: "complete" } {
  return {
    kind: "complete",
    finishReason: finishReason(c.finishReason),
    usage: {
      promptTokens: c.usage?.promptTokens ?? 0,
      completionTokens: c.usage?.completionTokens ?? 0,
      reasoningTokens: c.usage?.reasoningTokens ?? 0,
    },
  };
}

export function errorFromFrame(e: InferenceError): ProviderEvent & { kind: "error" } {
  return { kind: "error", statusCode: e.statusCode || 500, message: e.message || "provider error", reason: errorReason(e.reason) };
}

/** Builds the InferenceRequest frame for a dispatch. */
export function inferenceRequestFrame(requestId: string, model: string, bodyJson: Uint8Array, traits: RequestTraits): CoordinatorMessage {
  return create(CoordinatorMessageSchema, {
    msg: {
      case: "inferenceRequest",
      value: {
        requestId,
        model,
        bodyJson,
        traits: {
          maxTokens: traits.maxTokens,
          estimatedPromptTokens: traits.estimatedPromptTokens,
          hasTools: traits.hasTools,
          requiresVision: traits.requiresVision,
          stream: traits.stream,
        },
      },
    },
  });
}

export function cancelFrame(requestId: string, reason: string): CoordinatorMessage {
  return create(CoordinatorMessageSchema, { msg: { case: "cancelInference", value: { requestId, reason } } });
}

export function loadModelFrame(model: string): CoordinatorMessage {
  return create(CoordinatorMessageSchema, { msg: { case: "loadModel", value: { model } } });
}

export function registerAckFrame(providerId: string, heartbeatIntervalMs: number, desiredModels: string[]): CoordinatorMessage {
  return create(CoordinatorMessageSchema, { msg: { case: "registerAck", value: { providerId, heartbeatIntervalMs, desiredModels } } });
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
