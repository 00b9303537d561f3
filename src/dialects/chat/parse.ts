/**
 * Parses an OpenAI Chat Completions request into a {@link NormalizedRequest}: validates every field a provider
 * can honour and rebuilds a clean body from the known fields only (unknown fields are dropped, never forwarded).
 */
import type { NormalizedRequest } from "../../inference/types.js";
import { checkImageUrl, finalizeRequest, imagePart } from "../shared/provider-body.js";
import {
  invalid,
  isObject,
  optBoolean,
  optInteger,
  optNumber,
  optPositiveInt,
  optReasoningEffort,
  optStop,
  optString,
  requireArray,
  requireBody,
  requireObject,
  requireString,
  type JsonObject,
} from "../shared/request-fields.js";
import type { ParseContext } from "../shared/types.js";

const ROLES = new Set(["system", "developer", "user", "assistant", "tool"]);

function parseParts(content: unknown[], param: string, ctx: ParseContext, allowImages: boolean): JsonObject[] {
  return content.map((raw, i) => {
    const p = requireObject(raw, `${param}[${i}]`);
    if (p.type === "text")
      return { type: "text", text: typeof p.text === "string" ? p.text : requireString(p.text, `${param}[${i}].text`) };
    if (p.type === "image_url" && allowImages) {
      const img = p.image_url;
      // `image_url` is an object ({url, detail}); some clients send the bare URL string.
      const url = typeof img === "string" ? img : requireObject(img, `${param}[${i}].image_url`).url;
      const detail = isObject(img) ? img.detail : undefined;
      return imagePart(checkImageUrl(url, `${param}[${i}].image_url.url`, ctx), detail);
    }
    throw invalid(`${param}[${i}].type`, `unsupported content part type ${JSON.stringify(p.type)} here`);
  });
}

function parseContent(
  v: unknown,
  param: string,
  ctx: ParseContext,
  allowImages: boolean,
  nullable: boolean,
): string | JsonObject[] | null {
  if (typeof v === "string") return v;
  if ((v === null || v === undefined) && nullable) return null;
  if (Array.isArray(v)) return parseParts(v, param, ctx, allowImages);
  throw invalid(param, `'${param}' must be a string or an array of content parts`);
}

function parseToolCalls(v: unknown, param: string): JsonObject[] {
  if (!Array.isArray(v)) throw invalid(param, `'${param}' must be an array`);
  return v.map((raw, i) => {
    const tc = requireObject(raw, `${param}[${i}]`);
    const fn = requireObject(tc.function, `${param}[${i}].function`);
    const args = fn.arguments ?? "";
    if (typeof args !== "string")
      throw invalid(`${param}[${i}].function.arguments`, "tool call arguments must be a JSON string");
    return {
      id: requireString(tc.id, `${param}[${i}].id`),
      type: "function",
      function: { name: requireString(fn.name, `${param}[${i}].function.name`), arguments: args },
    };
  });
}

/** Validates one message and returns its clean form (`developer` becomes `system`: local templates lack it). */
export function parseChatMessage(raw: unknown, param: string, ctx: ParseContext): JsonObject {
  const m = requireObject(raw, param);
  const role = m.role;
  if (typeof role !== "string" || !ROLES.has(role)) {
    throw invalid(`${param}.role`, `'${param}.role' must be one of system, developer, user, assistant, tool`);
  }
  const name = optString(m.name, `${param}.name`);
  const out: JsonObject = { role: role === "developer" ? "system" : role };
  if (role === "assistant") {
    out.content = parseContent(m.content, `${param}.content`, ctx, false, true);
    if (m.tool_calls !== undefined && m.tool_calls !== null) {
      const calls = parseToolCalls(m.tool_calls, `${param}.tool_calls`);
      if (calls.length > 0) out.tool_calls = calls;
    }
    if (out.content === null && out.tool_calls === undefined) {
      throw invalid(`${param}.content`, "an assistant message needs content or tool_calls");
    }
  } else if (role === "tool") {
    out.content = parseContent(m.content, `${param}.content`, ctx, false, false);
    out.tool_call_id = requireString(m.tool_call_id, `${param}.tool_call_id`);
  } else {
    // Images only make sense in user turns; system prompts are text.
    out.content = parseContent(m.content, `${param}.content`, ctx, role === "user", false);
  }
  if (name !== undefined) out.name = name;
  return out;
}

/** Validates `tools` (function tools only) and returns clean copies. */
export function parseChatTools(v: unknown): JsonObject[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalid("tools", "'tools' must be an array");
  return v.map((raw, i) => {
    const t = requireObject(raw, `tools[${i}]`);
    if (t.type !== "function") throw invalid(`tools[${i}].type`, "only function tools are supported");
    const fn = requireObject(t.function, `tools[${i}].function`);
    const clean: JsonObject = { name: requireString(fn.name, `tools[${i}].function.name`) };
    const description = optString(fn.description, `tools[${i}].function.description`);
    if (description !== undefined) clean.description = description;
    if (fn.parameters !== undefined && fn.parameters !== null)
      clean.parameters = requireObject(fn.parameters, `tools[${i}].function.parameters`);
    const strict = optBoolean(fn.strict, `tools[${i}].function.strict`);
    if (strict !== undefined) clean.strict = strict;
    return { type: "function", function: clean };
  });
}

/** Validates a chat `tool_choice` against the declared tools. */
export function parseChatToolChoice(v: unknown, tools: JsonObject[] | undefined): unknown {
  if (v === undefined || v === null) return undefined;
  if (v === "none" || v === "auto" || v === "required") return v;
  if (isObject(v) && v.type === "function" && isObject(v.function)) {
    const name = requireString(v.function.name, "tool_choice.function.name");
    const declared = (tools ?? []).some((t) => (t.function as JsonObject).name === name);
    if (!declared) throw invalid("tool_choice", `tool_choice names '${name}', which is not in 'tools'`);
    return { type: "function", function: { name } };
  }
  throw invalid("tool_choice", "'tool_choice' must be none, auto, required or {type:'function',function:{name}}");
}

/** Validates `response_format` (text, json_object, json_schema). */
export function parseResponseFormat(v: unknown, param: string): JsonObject | undefined {
  if (v === undefined || v === null) return undefined;
  const rf = requireObject(v, param);
  if (rf.type === "text" || rf.type === "json_object") return { type: rf.type };
  if (rf.type === "json_schema") {
    const js = requireObject(rf.json_schema, `${param}.json_schema`);
    const clean: JsonObject = { name: requireString(js.name, `${param}.json_schema.name`) };
    if (js.schema !== undefined) clean.schema = requireObject(js.schema, `${param}.json_schema.schema`);
    const strict = optBoolean(js.strict, `${param}.json_schema.strict`);
    if (strict !== undefined) clean.strict = strict;
    const description = optString(js.description, `${param}.json_schema.description`);
    if (description !== undefined) clean.description = description;
    return { type: "json_schema", json_schema: clean };
  }
  throw invalid(`${param}.type`, `'${param}.type' must be text, json_object or json_schema`);
}

/** `n` must be absent or 1: providers produce one choice per request. */
export function rejectMultipleChoices(n: unknown): void {
  const count = optInteger(n, "n");
  if (count !== undefined && count !== 1) throw invalid("n", "only n=1 is supported");
}

/** Parses a Chat Completions request body. */
export function parseChatRequest(raw: unknown, ctx: ParseContext): NormalizedRequest {
  const b = requireBody(raw);
  const model = requireString(b.model, "model");
  const messages = requireArray(b.messages, "messages").map((m, i) => parseChatMessage(m, `messages[${i}]`, ctx));
  rejectMultipleChoices(b.n);
  if (b.logprobs === true) throw invalid("logprobs", "logprobs are not supported");
  const stream = optBoolean(b.stream, "stream") ?? false;
  if (b.stream_options !== undefined && b.stream_options !== null) {
    if (!stream) throw invalid("stream_options", "'stream_options' is only allowed when 'stream' is true");
    optBoolean(requireObject(b.stream_options, "stream_options").include_usage, "stream_options.include_usage");
  }
  const tools = parseChatTools(b.tools);
  // max_completion_tokens supersedes the deprecated max_tokens when both are sent.
  const maxCompletion = optPositiveInt(b.max_completion_tokens, "max_completion_tokens");
  const maxTokens = maxCompletion ?? optPositiveInt(b.max_tokens, "max_tokens");
  const user = optString(b.user, "user");
  const cacheKey = optString(b.prompt_cache_key, "prompt_cache_key");
  const effort = optReasoningEffort(b.reasoning_effort, "reasoning_effort");
  return finalizeRequest(
    {
      model,
      messages,
      tools,
      maxTokens,
      stream,
      affinityKey: cacheKey ?? user,
      extra: {
        tool_choice: parseChatToolChoice(b.tool_choice, tools),
        parallel_tool_calls: optBoolean(b.parallel_tool_calls, "parallel_tool_calls"),
        response_format: parseResponseFormat(b.response_format, "response_format"),
        temperature: optNumber(b.temperature, "temperature", 0, 2),
        top_p: optNumber(b.top_p, "top_p", 0, 1),
        presence_penalty: optNumber(b.presence_penalty, "presence_penalty", -2, 2),
        frequency_penalty: optNumber(b.frequency_penalty, "frequency_penalty", -2, 2),
        seed: optInteger(b.seed, "seed"),
        stop: optStop(b.stop, "stop"),
        reasoning_effort: effort,
        user,
      },
    },
    ctx,
  );
}

/** Whether a chat body asked for usage in its stream (`stream_options.include_usage`). */
export function chatIncludeUsage(raw: unknown): boolean {
  return isObject(raw) && isObject(raw.stream_options) && raw.stream_options.include_usage === true;
}
