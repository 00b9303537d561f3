/**
 * Per-request bounds on consumer inference bodies, checked at parse time so no later step (tool-schema repair,
 * prompt estimates, re-serialisation, routing) does unbounded work for one caller. Each refusal is a 400
 * `invalid_request_error` whose message names the limit and whose `code` is `request_limit_exceeded`.
 */
import { CoordinatorError } from "../errors/coordinator-error.js";
import type { NormalizedRequest } from "../inference/types.js";
import { parseAllowHosts, type ImageUrlPolicy } from "../dialects/shared/image-url-policy.js";
import type { ParseContext } from "../dialects/shared/types.js";
import { checkLabel, wireBounds } from "../protocol/wire-bounds.js";
import { checkJsonLimits, type JsonLimits } from "./json-limits.js";

/** The bounds, all inclusive (a request at exactly the limit is served). Defaults are in src/config/config.ts. */
export interface RequestLimits {
  json: JsonLimits;
  /** Most messages after translation to the chat form (Anthropic tool results count one each), and most tool calls across them. */
  maxMessages: number;
  /** Most tools declared. */
  maxTools: number;
  /** Most image parts across all messages. */
  maxImages: number;
  /** Longest `user`, `prompt_cache_key`, `safety_identifier` or `metadata.user_id`, in characters. */
  maxUserFieldChars: number;
  /** Which image URLs and data URIs the dialects accept (checked where each dialect parses an image part). */
  imageUrls: ImageUrlPolicy;
}

/** The config settings the limits come from (a slice of Config). */
export interface RequestLimitSettings {
  maxJsonDepth: number;
  maxJsonArrayLength: number;
  maxJsonObjectKeys: number;
  maxJsonStringChars: number;
  maxRequestMessages: number;
  maxRequestTools: number;
  maxRequestImages: number;
  maxUserFieldChars: number;
  maxImageDataBytes: number;
  imageUrlAllowHttp: boolean;
  /** Comma-separated; validated by loadConfig. */
  imageUrlAllowHosts: string | undefined;
}

/** Builds the limits from the resolved settings. */
export function requestLimitsFrom(s: RequestLimitSettings): RequestLimits {
  return {
    json: {
      maxDepth: s.maxJsonDepth,
      maxArrayLength: s.maxJsonArrayLength,
      maxObjectKeys: s.maxJsonObjectKeys,
      maxStringChars: s.maxJsonStringChars,
    },
    maxMessages: s.maxRequestMessages,
    maxTools: s.maxRequestTools,
    maxImages: s.maxRequestImages,
    maxUserFieldChars: s.maxUserFieldChars,
    imageUrls: Object.freeze({
      allowHttp: s.imageUrlAllowHttp,
      allowHosts: Object.freeze(parseAllowHosts(s.imageUrlAllowHosts)),
      maxDataBytes: s.maxImageDataBytes,
    }),
  };
}

/** What the dialects parse a body against: the model's default output budget and the image URL policy. */
export function parseContextFor(models: Pick<ParseContext, "defaultMaxTokens">, limits: RequestLimits): ParseContext {
  return { defaultMaxTokens: (model) => models.defaultMaxTokens(model), imageUrls: limits.imageUrls };
}

/** The 400 every limit answers with. */
export function limitExceeded(message: string, param?: string): CoordinatorError {
  return new CoordinatorError("invalid_request", message, {
    wireCode: "request_limit_exceeded",
    ...(param !== undefined ? { param } : {}),
  });
}

/** Throws when the raw body text passes a structural JSON limit (run before parsing or repairing it). */
export function assertJsonWithinLimits(raw: string, limits: RequestLimits): void {
  const v = checkJsonLimits(raw, limits.json);
  if (v) throw limitExceeded(`request body refused: ${v.message} (limit ${v.max})`);
}

/** Caller identifiers that end up as routing keys, by where each dialect carries them. */
const USER_FIELDS: readonly (readonly [string, string?])[] = [
  ["user"],
  ["prompt_cache_key"],
  ["safety_identifier"],
  ["metadata", "user_id"],
];

/**
 * Throws when a caller identifier is longer than the limit: it becomes the cache-affinity key, which used to be
 * hashed once per candidate Mac (a 15 MiB `user` stalled the event loop for 591 ms with 4 Macs).
 */
export function assertUserFieldsWithinLimits(body: unknown, limits: RequestLimits): void {
  if (typeof body !== "object" || body === null) return;
  for (const [field, sub] of USER_FIELDS) {
    let v = (body as Record<string, unknown>)[field];
    if (sub !== undefined) v = typeof v === "object" && v !== null ? (v as Record<string, unknown>)[sub] : undefined;
    if (typeof v === "string" && v.length > limits.maxUserFieldChars) {
      const param = sub === undefined ? field : `${field}.${sub}`;
      throw limitExceeded(`'${param}' is longer than ${limits.maxUserFieldChars} characters`, param);
    }
  }
}

/** Throws when the translated request has more messages, tools or images than the limits allow. */
export function assertRequestWithinLimits(n: NormalizedRequest, limits: RequestLimits): void {
  const messages = Array.isArray(n.body.messages) ? (n.body.messages as unknown[]) : [];
  if (messages.length > limits.maxMessages)
    throw limitExceeded(`too many messages: ${messages.length} (limit ${limits.maxMessages})`, "messages");
  // Tool calls are bounded by the same number: Responses merges consecutive function_call items into one message.
  const toolCalls = countToolCalls(messages);
  if (toolCalls > limits.maxMessages)
    throw limitExceeded(`too many tool calls: ${toolCalls} (limit ${limits.maxMessages})`, "messages");
  const tools = Array.isArray(n.body.tools) ? n.body.tools.length : 0;
  if (tools > limits.maxTools) throw limitExceeded(`too many tools: ${tools} (limit ${limits.maxTools})`, "tools");
  // A Mac calling a declared tool streams its name back, and the provider edge ends a session whose tool-call name
  // breaks the wire rule (at most wireBounds.maxToolNameChars, no control characters): such a declared name got
  // honest Macs disconnected, one per attempt, and the caller a 502 (found by test/fuzz/consumer-routes.test.ts).
  for (const name of toolNames(n.body.tools)) {
    try {
      checkLabel(name, "tools", wireBounds.maxToolNameChars);
    } catch {
      throw limitExceeded(
        `a tool name must be at most ${wireBounds.maxToolNameChars} characters, without control characters`,
        "tools",
      );
    }
  }
  const images = countImages(messages);
  if (images > limits.maxImages)
    throw limitExceeded(`too many images: ${images} (limit ${limits.maxImages})`, "messages");
}

function countToolCalls(messages: readonly unknown[]): number {
  let n = 0;
  for (const m of messages) {
    const calls = (m as { tool_calls?: unknown } | null)?.tool_calls;
    if (Array.isArray(calls)) n += calls.length;
  }
  return n;
}

/** The function names of chat-form tools (`[{type: "function", function: {name}}]`). */
function toolNames(tools: unknown): string[] {
  if (!Array.isArray(tools)) return [];
  return tools
    .map((t) => (t as { function?: { name?: unknown } } | null)?.function?.name)
    .filter((name): name is string => typeof name === "string");
}

function countImages(messages: readonly unknown[]): number {
  let n = 0;
  for (const m of messages) {
    const content = typeof m === "object" && m !== null ? (m as Record<string, unknown>).content : undefined;
    if (!Array.isArray(content)) continue;
    for (const p of content)
      if (typeof p === "object" && p !== null && (p as Record<string, unknown>).type === "image_url") n++;
  }
  return n;
}
