/**
 * Parses an Anthropic Messages request (`POST /v1/messages`) into the chat-completions form providers take:
 * `system` → a system message; user `tool_result` blocks → tool messages (placed before the rest of the
 * turn, where Anthropic requires them); assistant `tool_use` blocks → tool_calls with JSON-string arguments;
 * image blocks (base64 or url sources) → `image_url` parts; `input_schema` tools → chat function tools;
 * `stop_sequences` → `stop`; `top_k` is forwarded as is. `max_tokens` is required, as Anthropic requires it.
 */
import type { NormalizedRequest } from "../../inference/types.js";
import { checkImageUrl, finalizeRequest, functionTool, imagePart } from "../shared/provider-body.js";
import {
  invalid,
  isObject,
  optBoolean,
  optNumber,
  optPositiveInt,
  optStop,
  optString,
  requireArray,
  requireBody,
  requireObject,
  requireString,
  type JsonObject,
} from "../shared/request-fields.js";
import type { ParseContext } from "../shared/types.js";

function imageBlock(b: JsonObject, param: string, ctx: ParseContext): JsonObject {
  const src = requireObject(b.source, `${param}.source`);
  if (src.type === "base64") {
    const mediaType = requireString(src.media_type, `${param}.source.media_type`);
    const data = requireString(src.data, `${param}.source.data`);
    return imagePart(checkImageUrl(`data:${mediaType};base64,${data}`, `${param}.source`, ctx), undefined);
  }
  if (src.type === "url") return imagePart(checkImageUrl(src.url, `${param}.source.url`, ctx), undefined);
  throw invalid(`${param}.source.type`, "image source must be base64 or url");
}

function textOf(b: JsonObject, param: string): string {
  if (typeof b.text !== "string") throw invalid(`${param}.text`, `'${param}.text' must be a string`);
  return b.text;
}

/** A tool_result's content → tool message text, with any images handed back for the following user turn. */
function toolResult(b: JsonObject, param: string, ctx: ParseContext, images: JsonObject[]): JsonObject {
  let text = "";
  if (typeof b.content === "string") text = b.content;
  else if (Array.isArray(b.content)) {
    b.content.forEach((raw, k) => {
      const c = requireObject(raw, `${param}.content[${k}]`);
      if (c.type === "text") text += textOf(c, `${param}.content[${k}]`);
      else if (c.type === "image") images.push(imageBlock(c, `${param}.content[${k}]`, ctx));
      else throw invalid(`${param}.content[${k}].type`, `unsupported tool_result block ${JSON.stringify(c.type)}`);
    });
  } else if (b.content !== undefined && b.content !== null) {
    throw invalid(`${param}.content`, "tool_result content must be a string or an array of blocks");
  }
  // Chat has no error flag on tool messages; say it in the text so the model still sees it.
  if (b.is_error === true) text = `[tool error] ${text}`;
  return { role: "tool", tool_call_id: requireString(b.tool_use_id, `${param}.tool_use_id`), content: text };
}

function userTurn(blocks: unknown[], param: string, ctx: ParseContext): JsonObject[] {
  const tools: JsonObject[] = [];
  const parts: JsonObject[] = [];
  blocks.forEach((raw, j) => {
    const at = `${param}[${j}]`;
    const b = requireObject(raw, at);
    if (b.type === "text") parts.push({ type: "text", text: textOf(b, at) });
    else if (b.type === "image") parts.push(imageBlock(b, at, ctx));
    else if (b.type === "tool_result") tools.push(toolResult(b, at, ctx, parts));
    else throw invalid(`${at}.type`, `unsupported content block ${JSON.stringify(b.type)} in a user message`);
  });
  return parts.length > 0 ? [...tools, { role: "user", content: parts }] : tools;
}

function assistantTurn(blocks: unknown[], param: string): JsonObject {
  let text = "";
  const calls: JsonObject[] = [];
  blocks.forEach((raw, j) => {
    const at = `${param}[${j}]`;
    const b = requireObject(raw, at);
    if (b.type === "text") text += textOf(b, at);
    else if (b.type === "tool_use") {
      calls.push({
        id: requireString(b.id, `${at}.id`),
        type: "function",
        function: { name: requireString(b.name, `${at}.name`), arguments: JSON.stringify(b.input ?? {}) },
      });
    } else if (b.type === "thinking" || b.type === "redacted_thinking") {
      // Prior thinking is not replayed to the model.
    } else throw invalid(`${at}.type`, `unsupported content block ${JSON.stringify(b.type)} in an assistant message`);
  });
  const msg: JsonObject = { role: "assistant", content: text === "" && calls.length > 0 ? null : text };
  if (calls.length > 0) msg.tool_calls = calls;
  return msg;
}

/** Translates `system` + `messages` into chat messages. */
export function anthropicToMessages(system: unknown, rawMessages: unknown, ctx: ParseContext): JsonObject[] {
  const out: JsonObject[] = [];
  if (typeof system === "string") {
    if (system.length > 0) out.push({ role: "system", content: system });
  } else if (Array.isArray(system)) {
    const text = system.map((raw, i) => textOf(requireObject(raw, `system[${i}]`), `system[${i}]`)).join("\n");
    if (text.length > 0) out.push({ role: "system", content: text });
  } else if (system !== undefined && system !== null) {
    throw invalid("system", "'system' must be a string or an array of text blocks");
  }
  requireArray(rawMessages, "messages").forEach((raw, i) => {
    const param = `messages[${i}]`;
    const m = requireObject(raw, param);
    if (m.role !== "user" && m.role !== "assistant") throw invalid(`${param}.role`, "role must be user or assistant");
    if (typeof m.content === "string") out.push({ role: m.role, content: m.content });
    else if (Array.isArray(m.content)) {
      if (m.role === "user") out.push(...userTurn(m.content, `${param}.content`, ctx));
      else out.push(assistantTurn(m.content, `${param}.content`));
    } else throw invalid(`${param}.content`, "content must be a string or an array of content blocks");
  });
  return out;
}

function parseTools(v: unknown): JsonObject[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalid("tools", "'tools' must be an array");
  return v.map((raw, i) => {
    const t = requireObject(raw, `tools[${i}]`);
    // Server tools (web_search_..., bash_..., text_editor_...) run at Anthropic; only client tools apply here.
    if (t.type !== undefined && t.type !== null && t.type !== "custom")
      throw invalid(`tools[${i}].type`, "only client (custom) tools are supported");
    return functionTool(
      requireString(t.name, `tools[${i}].name`),
      optString(t.description, `tools[${i}].description`),
      requireObject(t.input_schema, `tools[${i}].input_schema`),
    );
  });
}

function parseToolChoice(
  v: unknown,
  tools: JsonObject[] | undefined,
): { choice?: unknown; parallel?: boolean | undefined } {
  if (v === undefined || v === null) return {};
  const tc = requireObject(v, "tool_choice");
  const parallel =
    optBoolean(tc.disable_parallel_tool_use, "tool_choice.disable_parallel_tool_use") === true ? false : undefined;
  if (tc.type === "auto" || tc.type === "none") return { choice: tc.type, parallel };
  if (tc.type === "any") return { choice: "required", parallel };
  if (tc.type === "tool") {
    const name = requireString(tc.name, "tool_choice.name");
    if (!(tools ?? []).some((t) => (t.function as JsonObject).name === name)) {
      throw invalid("tool_choice.name", `tool_choice names '${name}', which is not in 'tools'`);
    }
    return { choice: { type: "function", function: { name } }, parallel };
  }
  throw invalid("tool_choice.type", "tool_choice.type must be auto, any, tool or none");
}

/** Parses an Anthropic Messages request body. */
export function parseAnthropicRequest(raw: unknown, ctx: ParseContext): NormalizedRequest {
  const b = requireBody(raw);
  const model = requireString(b.model, "model");
  if (b.max_tokens === undefined || b.max_tokens === null) throw invalid("max_tokens", "'max_tokens' is required");
  const maxTokens = optPositiveInt(b.max_tokens, "max_tokens");
  const messages = anthropicToMessages(b.system, b.messages, ctx);
  const tools = parseTools(b.tools);
  const { choice, parallel } = parseToolChoice(b.tool_choice, tools);
  const stop = optStop(b.stop_sequences, "stop_sequences", { arrayOnly: true });
  const userId = isObject(b.metadata) ? optString(b.metadata.user_id, "metadata.user_id") : undefined;
  return finalizeRequest(
    {
      model,
      messages,
      tools,
      maxTokens,
      stream: optBoolean(b.stream, "stream") ?? false,
      affinityKey: userId,
      extra: {
        tool_choice: choice,
        parallel_tool_calls: parallel,
        temperature: optNumber(b.temperature, "temperature", 0, 1),
        top_p: optNumber(b.top_p, "top_p", 0, 1),
        top_k: optPositiveInt(b.top_k, "top_k"),
        stop: Array.isArray(stop) && stop.length > 0 ? stop : undefined,
        user: userId,
      },
    },
    ctx,
  );
}
