/**
 * The checks a simulated Mac makes before it touches a model: a readable chat body, a model on its disk, a
 * prompt that fits the context. Returned as data so the Mac only carries the answer out.
 */
import { ErrorReason, type InferenceRequest } from "../../../gen/coordinator/provider/v1/provider_pb.js";
import type { SimModelSpec } from "./mac-performance.js";
import { countPromptTokens, parseChatBody, type SimChatRequest } from "./sim-request.js";

/** A request the Mac refuses outright, or the facts it runs an accepted one with. */
export type RequestCheck =
  | { kind: "rejected"; statusCode: number; reason: ErrorReason; message: string }
  | { kind: "accepted"; body: SimChatRequest; spec: SimModelSpec; promptTokens: number; maxTokens: number };

/**
 * Checks `req` against the models on disk. `maxTokens` is the request's own cap (else its traits', else the
 * model's default), cut to what the context leaves after the prompt and at least 1.
 */
export function checkInferenceRequest(req: InferenceRequest, onDisk: ReadonlyMap<string, SimModelSpec>): RequestCheck {
  const body = parseChatBody(req.bodyJson);
  if (!body)
    return {
      kind: "rejected",
      statusCode: 400,
      reason: ErrorReason.INVALID_REQUEST,
      message: "body_json is not a chat-completions object",
    };
  const spec = onDisk.get(req.model);
  if (!spec)
    return {
      kind: "rejected",
      statusCode: 503,
      reason: ErrorReason.MODEL_LOAD_FAILED,
      message: `model ${req.model} is not on this provider`,
    };
  const promptTokens = countPromptTokens(body);
  if (promptTokens >= spec.contextLength) {
    return {
      kind: "rejected",
      statusCode: 400,
      reason: ErrorReason.CONTEXT_OVERFLOW,
      message: `prompt of ${promptTokens} tokens exceeds context ${spec.contextLength}`,
    };
  }
  const requested = body.maxTokens ?? (req.traits?.maxTokens || spec.defaultMaxTokens);
  const maxTokens = Math.max(1, Math.min(requested, spec.contextLength - promptTokens));
  return { kind: "accepted", body, spec, promptTokens, maxTokens };
}
