/**
 * Dialect- and wire-independent types of one inference: what a consumer asked for (after translation from
 * Chat Completions / Responses / Anthropic Messages) and what a provider streams back (typed deltas).
 * Pure data; no imports.
 */

/** Request ids are opaque strings minted by the coordinator ("req_..."). */
export type RequestId = string;

/** One typed piece of output. Whether it is content-bearing is a property of its kind, never a guess. */
export type Delta =
  | { kind: "role"; role: string }
  | { kind: "content"; text: string }
  | { kind: "reasoning"; text: string }
  | { kind: "tool_call"; index: number; id?: string; name?: string; arguments?: string };

/** True for deltas that carry model output (content, reasoning or a tool call), false for boilerplate. */
export function isContentBearing(d: Delta): boolean {
  return d.kind !== "role";
}

export type FinishReason = "stop" | "length" | "tool_calls" | "content_filter";

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  reasoningTokens: number;
}

/** Machine-readable provider error reasons (mirrors the proto enum). */
export type ProviderErrorReason =
  | "unspecified"
  | "context_overflow"
  | "capacity"
  | "model_load_failed"
  | "insufficient_memory"
  | "template"
  | "internal"
  | "cancelled"
  | "draining"
  | "invalid_request";

/** What a provider session reports about one dispatched request, in order. */
export type ProviderEvent =
  | { kind: "accepted" }
  | { kind: "chunk"; deltas: Delta[] }
  /**
   * `usageRefused`: the claimed usage was outside what any request can reach, so it is not a claim at all; the
   * coordinator bills its own count (and the session that sent it ends).
   */
  | { kind: "complete"; finishReason: FinishReason; usage: Usage; usageRefused?: string }
  | { kind: "error"; statusCode: number; message: string; reason: ProviderErrorReason }
  /** The provider's stream ended or it was evicted while this request was in flight. */
  | { kind: "disconnected"; message: string }
  /**
   * Cluster mode: the coordinator that owns the Mac's stream would not take the request, on a fresher view than
   * the one it was picked from. Not a failure of the Mac, and not an attempt: the request is picked again.
   */
  | { kind: "refused"; message: string };

/** Which breaker bucket a request falls in: tools and vision requests fail in ways base traffic does not. */
export type RequestShape = "base" | "tools" | "vision";

/** Typed traits sent with every InferenceRequest and used for routing. */
export interface RequestTraits {
  /** Bounded output budget (the request's max_tokens, or the model default when absent). */
  maxTokens: number;
  /** Prompt size estimate in tokens, counting images. */
  estimatedPromptTokens: number;
  hasTools: boolean;
  requiresVision: boolean;
  stream: boolean;
}

/**
 * A consumer request after dialect translation: the chat-completions JSON body the provider receives
 * (tool schemas already repaired) plus its traits.
 */
export interface NormalizedRequest {
  model: string;
  /** OpenAI chat-completions request object sent to the provider as JSON. */
  body: Record<string, unknown>;
  traits: RequestTraits;
  /** `user` or `prompt_cache_key`, for optional cache affinity. */
  affinityKey?: string;
}

/** The shape of a request for breakers: vision dominates tools, tools dominate base. */
export function shapeOf(traits: Pick<RequestTraits, "hasTools" | "requiresVision">): RequestShape {
  if (traits.requiresVision) return "vision";
  if (traits.hasTools) return "tools";
  return "base";
}
