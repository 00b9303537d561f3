/**
 * A consumer API dialect (OpenAI Chat Completions, legacy Completions, Responses, Anthropic Messages):
 * how to parse its requests into a {@link NormalizedRequest} and how to render typed deltas back.
 */
import type { ServerResponse } from "node:http";
import type { CoordinatorError } from "../../errors/coordinator-error.js";
import type { Delta, FinishReason, NormalizedRequest, Usage } from "../../inference/types.js";
import type { ImageUrlPolicy } from "./image-url-policy.js";

export type DialectName = "chat" | "completions" | "responses" | "messages";

export interface ParseContext {
  /** Resolves the model's default output budget, injected when the request sets none. */
  defaultMaxTokens(model: string): number;
  /**
   * Whether remote image URLs are accepted at all (the provider fetches them). Optional; default true. Base64
   * data URIs are not affected (they are checked by `imageUrls` either way).
   */
  allowImageUrls?: boolean;
  /** Which image URLs and data URIs are accepted (src/dialects/shared/image-url-policy.ts). Default: the default policy. */
  imageUrls?: ImageUrlPolicy;
}

export interface RenderMeta {
  requestId: string;
  model: string;
  createdS: number;
  /** Chat: stream_options.include_usage. Other dialects always include usage where their format has it. */
  includeUsage: boolean;
  /**
   * Prompt tokens known when the response commits (the request's estimate). Optional; Anthropic's
   * `message_start` reports it as `usage.input_tokens` (the final count follows in `message_delta`). Default 0.
   */
  promptTokens?: number;
  /** The consumer's parsed request body; dialects whose response objects echo request settings read it. */
  request?: unknown;
}

/** Renders a streamed response as server-sent events text. */
export interface StreamRenderer {
  /** Events written when the response commits (before the first deltas). */
  start(): string;
  deltas(ds: readonly Delta[]): string;
  finish(reason: FinishReason, usage: Usage): string;
  /** An explicit in-band error after content has flowed (never a bare close). */
  error(e: CoordinatorError): string;
}

/** Accumulates a non-streamed response. */
export interface ResponseAccumulator {
  deltas(ds: readonly Delta[]): void;
  finish(reason: FinishReason, usage: Usage): unknown;
}

export interface Dialect {
  readonly name: DialectName;
  /** Parses a JSON body (already tool-schema repaired). Throws CoordinatorError("invalid_request") on bad input. */
  parse(body: unknown, ctx: ParseContext): NormalizedRequest;
  /** Whether the parsed request asked for streaming. */
  isStream(body: unknown): boolean;
  streamRenderer(meta: RenderMeta): StreamRenderer;
  accumulator(meta: RenderMeta): ResponseAccumulator;
  /** The dialect's error body. */
  errorBody(e: CoordinatorError): unknown;
  /**
   * Answers with `e` as an HTTP error in the dialect's shape: the one way an error status leaves any of the
   * dialect's routes (the dialect's errors.ts).
   */
  sendError(res: ServerResponse, e: CoordinatorError, options?: SendErrorOptions): void;
}

/** What an error response carries beyond its {@link CoordinatorError}. */
export interface SendErrorOptions {
  /** Headers sent before the error's own (`Retry-After`, its carried headers), which win on a clash. Default none. */
  headers?: Record<string, string>;
  /** The HTTP status, when it is not the code's (a 405 has no code of its own). Default `e.status`. */
  status?: number;
}
