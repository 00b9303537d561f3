/**
 * Parses an OpenAI Responses request (`POST /v1/responses`) into the chat-completions form providers take:
 * `instructions` → a system message, `input` items → chat messages (function_call items → assistant
 * tool_calls, function_call_output items → tool messages), flat function tools → chat tools, `text.format` →
 * `response_format`, `max_output_tokens` → `max_tokens`. The coordinator is stateless, so
 * `previous_response_id`, `conversation` and item references are rejected with a 400 naming the field.
 */
import type { NormalizedRequest } from "../../inference/types.js";
import { checkImageUrl, finalizeRequest, functionTool, imagePart } from "../shared/provider-body.js";
import {
  invalid,
  isObject,
  optBoolean,
  optNumber,
  optPositiveInt,
  optReasoningEffort,
  optString,
  requireBody,
  requireObject,
  requireString,
  type JsonObject,
} from "../shared/request-fields.js";
import type { ParseContext } from "../shared/types.js";

const MESSAGE_ROLES = new Set(["user", "assistant", "system", "developer"]);

function parseParts(parts: unknown[], param: string, role: string, ctx: ParseContext): JsonObject[] {
  return parts.map((raw, j) => {
    const p = requireObject(raw, `${param}[${j}]`);
    const at = `${param}[${j}]`;
    switch (p.type) {
      case "input_text":
      case "output_text":
        return { type: "text", text: typeof p.text === "string" ? p.text : requireString(p.text, `${at}.text`) };
      case "refusal":
        return { type: "text", text: requireString(p.refusal, `${at}.refusal`) };
      case "input_image":
        if (role !== "user") throw invalid(`${at}.type`, "images are only accepted in user messages");
        if (p.file_id !== undefined && p.file_id !== null)
          throw invalid(`${at}.file_id`, "file ids are not supported; send image_url");
        return imagePart(checkImageUrl(p.image_url, `${at}.image_url`, ctx), p.detail);
      default:
        throw invalid(`${at}.type`, `unsupported content part type ${JSON.stringify(p.type)}`);
    }
  });
}

/** Joins text parts for roles whose chat templates expect a plain string. */
function joinText(parts: JsonObject[]): string {
  return parts.map((p) => p.text as string).join("");
}

function parseMessageItem(item: JsonObject, param: string, ctx: ParseContext): JsonObject {
  const role = item.role;
  if (typeof role !== "string" || !MESSAGE_ROLES.has(role)) {
    throw invalid(`${param}.role`, `'${param}.role' must be one of user, assistant, system, developer`);
  }
  const chatRole = role === "developer" ? "system" : role;
  if (typeof item.content === "string") return { role: chatRole, content: item.content };
  if (!Array.isArray(item.content))
    throw invalid(`${param}.content`, `'${param}.content' must be a string or an array`);
  const parts = parseParts(item.content, `${param}.content`, role, ctx);
  return { role: chatRole, content: role === "user" ? parts : joinText(parts) };
}

function outputText(v: unknown, param: string): string {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) {
    return v
      .map((raw, j) => {
        const p = requireObject(raw, `${param}[${j}]`);
        if (p.type !== "input_text" && p.type !== "output_text")
          throw invalid(`${param}[${j}].type`, "function_call_output parts must be text");
        return requireString(p.text, `${param}[${j}].text`);
      })
      .join("");
  }
  throw invalid(param, `'${param}' must be a string or an array of text parts`);
}

/** Translates `instructions` + `input` into chat messages. */
export function responsesInputToMessages(
  instructions: string | undefined,
  input: unknown,
  ctx: ParseContext,
): JsonObject[] {
  const messages: JsonObject[] = [];
  if (instructions !== undefined && instructions.length > 0) messages.push({ role: "system", content: instructions });
  if (typeof input === "string") {
    if (input.length === 0) throw invalid("input", "'input' must not be empty");
    messages.push({ role: "user", content: input });
    return messages;
  }
  if (input === undefined || input === null) throw invalid("input", "'input' is required");
  if (!Array.isArray(input) || input.length === 0)
    throw invalid("input", "'input' must be a string or a non-empty array of items");
  input.forEach((raw, i) => {
    const param = `input[${i}]`;
    const item = requireObject(raw, param);
    const type = item.type ?? "message";
    if (type === "message") {
      messages.push(parseMessageItem(item, param, ctx));
    } else if (type === "function_call") {
      const args = item.arguments ?? "";
      if (typeof args !== "string") throw invalid(`${param}.arguments`, "'arguments' must be a JSON string");
      const call = {
        id: requireString(item.call_id, `${param}.call_id`),
        type: "function",
        function: { name: requireString(item.name, `${param}.name`), arguments: args },
      };
      // Consecutive function_call items are one assistant turn with several tool calls (appended in place: copying
      // the list per item made 100,000 items a 52 s parse on the event loop).
      const last = messages.at(-1);
      const calls = last?.role === "assistant" ? (last.tool_calls as JsonObject[] | undefined) : undefined;
      if (calls) calls.push(call);
      else if (last?.role === "assistant") last.tool_calls = [call];
      else messages.push({ role: "assistant", content: null, tool_calls: [call] });
    } else if (type === "function_call_output") {
      messages.push({
        role: "tool",
        tool_call_id: requireString(item.call_id, `${param}.call_id`),
        content: outputText(item.output, `${param}.output`),
      });
    } else if (type === "reasoning") {
      // Prior reasoning is not replayed to the model; chat templates drop it too.
    } else {
      throw invalid(`${param}.type`, `unsupported input item type ${JSON.stringify(type)}`);
    }
  });
  if (messages.length === 0) throw invalid("input", "'input' holds no messages");
  return messages;
}

function parseTools(v: unknown): JsonObject[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalid("tools", "'tools' must be an array");
  return v.map((raw, i) => {
    const t = requireObject(raw, `tools[${i}]`);
    if (t.type !== "function") throw invalid(`tools[${i}].type`, "only function tools are supported");
    const params =
      t.parameters === undefined || t.parameters === null
        ? undefined
        : requireObject(t.parameters, `tools[${i}].parameters`);
    return functionTool(
      requireString(t.name, `tools[${i}].name`),
      optString(t.description, `tools[${i}].description`),
      params,
      optBoolean(t.strict, `tools[${i}].strict`),
    );
  });
}

function parseToolChoice(v: unknown, tools: JsonObject[] | undefined): unknown {
  if (v === undefined || v === null) return undefined;
  if (v === "none" || v === "auto" || v === "required") return v;
  if (isObject(v) && v.type === "function") {
    const name = requireString(v.name, "tool_choice.name");
    if (!(tools ?? []).some((t) => (t.function as JsonObject).name === name)) {
      throw invalid("tool_choice", `tool_choice names '${name}', which is not in 'tools'`);
    }
    return { type: "function", function: { name } };
  }
  throw invalid("tool_choice", "'tool_choice' must be none, auto, required or {type:'function',name}");
}

function parseTextFormat(v: unknown): JsonObject | undefined {
  if (v === undefined || v === null) return undefined;
  const text = requireObject(v, "text");
  if (text.format === undefined || text.format === null) return undefined;
  const f = requireObject(text.format, "text.format");
  if (f.type === "text" || f.type === "json_object") return { type: f.type };
  if (f.type === "json_schema") {
    const js: JsonObject = { name: requireString(f.name, "text.format.name") };
    if (f.schema !== undefined) js.schema = requireObject(f.schema, "text.format.schema");
    if (typeof f.strict === "boolean") js.strict = f.strict;
    if (typeof f.description === "string") js.description = f.description;
    return { type: "json_schema", json_schema: js };
  }
  throw invalid("text.format.type", "'text.format.type' must be text, json_object or json_schema");
}

/** Parses a Responses request body. */
export function parseResponsesRequest(raw: unknown, ctx: ParseContext): NormalizedRequest {
  const b = requireBody(raw);
  const model = requireString(b.model, "model");
  for (const field of ["previous_response_id", "conversation"]) {
    if (b[field] !== undefined && b[field] !== null) {
      throw invalid(
        field,
        `'${field}' is not supported: responses are not stored; send the whole conversation in 'input'`,
      );
    }
  }
  if (b.background === true) throw invalid("background", "background responses are not supported");
  const messages = responsesInputToMessages(optString(b.instructions, "instructions"), b.input, ctx);
  const tools = parseTools(b.tools);
  const user = optString(b.user, "user") ?? optString(b.safety_identifier, "safety_identifier");
  const reasoning =
    b.reasoning === undefined || b.reasoning === null ? undefined : requireObject(b.reasoning, "reasoning");
  return finalizeRequest(
    {
      model,
      messages,
      tools,
      maxTokens: optPositiveInt(b.max_output_tokens, "max_output_tokens"),
      stream: optBoolean(b.stream, "stream") ?? false,
      affinityKey: optString(b.prompt_cache_key, "prompt_cache_key") ?? user,
      extra: {
        tool_choice: parseToolChoice(b.tool_choice, tools),
        parallel_tool_calls: optBoolean(b.parallel_tool_calls, "parallel_tool_calls"),
        response_format: parseTextFormat(b.text),
        temperature: optNumber(b.temperature, "temperature", 0, 2),
        top_p: optNumber(b.top_p, "top_p", 0, 1),
        reasoning_effort:
          reasoning === undefined ? undefined : optReasoningEffort(reasoning.effort, "reasoning.effort"),
        user,
      },
    },
    ctx,
  );
}
