/**
 * The provider-bound chat-completions body every dialect produces, and the traits computed from it. Dialects
 * validate and translate their own fields, then hand the clean pieces to {@link finalizeRequest}.
 */
import type { NormalizedRequest } from "../inference/types.js";
import { estimatePromptTokens, requiresVision } from "./prompt-estimate.js";
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

const DATA_IMAGE_URL = /^data:image\/[a-z0-9.+-]+;base64,[a-z0-9+/=\s]+$/i;

/**
 * Checks an image reference. Data URLs (`data:image/...;base64,...`) are always accepted; http(s) URLs only
 * when `ctx.allowImageUrls` is not false (the provider fetches them). Anything else is a 400 on `param`.
 */
export function checkImageUrl(url: unknown, param: string, ctx: ParseContext): string {
  if (typeof url !== "string" || url.length === 0) throw invalid(param, `'${param}' must be a non-empty URL string`);
  if (url.startsWith("data:")) {
    if (!DATA_IMAGE_URL.test(url)) throw invalid(param, `'${param}' must be a base64 data URL of an image`);
    return url;
  }
  if (/^https?:\/\//i.test(url)) {
    if (ctx.allowImageUrls === false) throw invalid(param, "image URLs are not accepted here; send a base64 data URL");
    return url;
  }
  throw invalid(param, `'${param}' must be an http(s) URL or a base64 data URL`);
}

/** Builds a chat `image_url` content part. */
export function imagePart(url: string, detail: unknown): JsonObject {
  const image_url: JsonObject = { url };
  if (detail === "low" || detail === "high" || detail === "auto") image_url.detail = detail;
  return { type: "image_url", image_url };
}

/** Builds a chat function tool from its pieces (shared by the Responses and Anthropic translations). */
export function functionTool(name: string, description: string | undefined, parameters: unknown, strict?: boolean): JsonObject {
  const fn: JsonObject = { name };
  if (description !== undefined) fn.description = description;
  if (parameters !== undefined) fn.parameters = parameters;
  if (strict !== undefined) fn.strict = strict;
  return { type: "function", function: fn };
}
