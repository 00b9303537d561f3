/**
 * The provider-bound chat-completions body every dialect produces, and the traits computed from it. Dialects
 * validate and translate their own fields, then hand the clean pieces to {@link finalizeRequest}.
 */
import type { NormalizedRequest } from "../../inference/types.js";
import { estimatePromptTokens, requiresVision } from "./prompt-estimate.js";
import { CoordinatorError } from "../../errors/coordinator-error.js";
import { classifyImageUrl, defaultImageUrlPolicy } from "./image-url-policy.js";
import { assignDefined, invalid, type JsonObject } from "./request-fields.js";
import type { ParseContext } from "./types.js";

/** Pieces of a translated request. `extra` holds optional forwarded fields (sampling, tool_choice, ...). */
export interface ChatRequestParts {
  model: string;
  messages: JsonObject[];
  tools: JsonObject[] | undefined;
  /** The consumer's output budget, or undefined to inject the model default. */
  maxTokens: number | undefined;
  stream: boolean;
  extra: JsonObject;
  affinityKey: string | undefined;
}

/**
 * Builds the {@link NormalizedRequest}: a body holding only the fields we forward, with `max_tokens` always set
 * (the model default when the consumer set none, so every request has a bounded output budget) and `stream`
 * set explicitly.
 */
export function finalizeRequest(p: ChatRequestParts, ctx: ParseContext): NormalizedRequest {
  const maxTokens = p.maxTokens ?? ctx.defaultMaxTokens(p.model);
  const body: JsonObject = { model: p.model, messages: p.messages };
  if (p.tools !== undefined && p.tools.length > 0) body.tools = p.tools;
  assignDefined(body, p.extra);
  body.max_tokens = maxTokens;
  body.stream = p.stream;
  const req: NormalizedRequest = {
    model: p.model,
    body,
    traits: {
      maxTokens,
      estimatedPromptTokens: estimatePromptTokens(p.messages, p.tools),
      hasTools: p.tools !== undefined && p.tools.length > 0,
      requiresVision: requiresVision(p.messages),
      stream: p.stream,
    },
  };
  if (p.affinityKey !== undefined && p.affinityKey.length > 0) req.affinityKey = p.affinityKey;
  return req;
}

/**
 * Checks an image reference, for every dialect (chat `image_url`, Responses `input_image`, Anthropic `image`
 * sources): the one place image URLs are vetted before a provider fetches them. Base64 data URIs are always
 * eligible; remote URLs only when `ctx.allowImageUrls` is not false. Both must pass {@link classifyImageUrl}
 * under `ctx.imageUrls` (default {@link defaultImageUrlPolicy}). Anything else is a 400 naming `param`, with
 * code `invalid_image_url`.
 */
export function checkImageUrl(url: unknown, param: string, ctx: ParseContext): string {
  if (typeof url !== "string" || url.length === 0) throw invalid(param, `'${param}' must be a non-empty URL string`);
  if (ctx.allowImageUrls === false && !/^data:/i.test(url))
    throw invalidImage(param, "image URLs are not accepted here; send a base64 data URI");
  const verdict = classifyImageUrl(url, ctx.imageUrls ?? defaultImageUrlPolicy);
  if (verdict.kind === "refused") throw invalidImage(param, `'${param}' ${verdict.message}`);
  return url;
}

function invalidImage(param: string, message: string): CoordinatorError {
  return new CoordinatorError("invalid_request", message, { param, wireCode: "invalid_image_url" });
}

/** Builds a chat `image_url` content part. */
export function imagePart(url: string, detail: unknown): JsonObject {
  const image_url: JsonObject = { url };
  if (detail === "low" || detail === "high" || detail === "auto") image_url.detail = detail;
  return { type: "image_url", image_url };
}

/** Builds a chat function tool from its pieces (shared by the Responses and Anthropic translations). */
export function functionTool(
  name: string,
  description: string | undefined,
  parameters: unknown,
  strict?: boolean,
): JsonObject {
  const fn: JsonObject = { name };
  if (description !== undefined) fn.description = description;
  if (parameters !== undefined) fn.parameters = parameters;
  if (strict !== undefined) fn.strict = strict;
  return { type: "function", function: fn };
}
