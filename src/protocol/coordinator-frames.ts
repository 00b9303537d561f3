/**
 * The frames the coordinator sends to a provider (inference request, cancel, model load, key challenge, register
 * ack), built from domain values. Kept apart from frames.ts, which validates what a provider sends: building an
 * outgoing frame trusts its input and checks nothing, so the two directions read separately.
 */
import { create } from "@bufbuild/protobuf";
import { CoordinatorMessageSchema, type CoordinatorMessage } from "../../gen/coordinator/provider/v1/provider_pb.js";
import type { RequestTraits } from "../inference/types.js";

/** Builds the InferenceRequest frame for a dispatch (`traceContext`: W3C Trace Context headers, default none). */
export function inferenceRequestFrame(
  requestId: string,
  model: string,
  bodyJson: Uint8Array,
  traits: RequestTraits,
  traceContext: Record<string, string> = {},
): CoordinatorMessage {
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
        traceContext,
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

/** Asks the provider to sign `nonce` with its registered key (at registration and periodically after). */
export function challengeFrame(nonce: Uint8Array): CoordinatorMessage {
  return create(CoordinatorMessageSchema, { msg: { case: "challenge", value: { nonce } } });
}

export function registerAckFrame(
  providerId: string,
  heartbeatIntervalMs: number,
  desiredModels: string[],
): CoordinatorMessage {
  return create(CoordinatorMessageSchema, {
    msg: { case: "registerAck", value: { providerId, heartbeatIntervalMs, desiredModels } },
  });
}
