/**
 * What a simulated Mac reads from an InferenceRequest's `body_json`, and the deterministic pieces derived
 * from it: prompt token count, a seed, natural answer length, generated words and tool-call arguments.
 * Pure functions: the same request always yields the same numbers and text, on every Mac.
 */
import { countTextTokens } from "../../usage/token-counter.js";
import { mulberry32 } from "../shared/mulberry32.js";

/** The chat-completions fields the simulator looks at. */
export interface SimChatRequest {
  messages: unknown[];
  maxTokens: number | undefined;
  /** The named tool first when `tool_choice` names one. */
  tools: SimTool[];
  /** `tool_choice` is "required" or names a function: a real model must answer with a tool call. */
  toolCallRequired: boolean;
  /** `tool_choice` is "none": no tool call, whatever a failure script says. */
  toolCallForbidden: boolean;
  stop: string[];
  hasImages: boolean;
}

export interface SimTool {
  name: string;
  parameters: unknown;
}

/** Parses `body_json`; malformed input yields an empty request rather than throwing (the Mac answers 400). */
export function parseChatBody(bodyJson: Uint8Array): SimChatRequest | undefined {
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(bodyJson));
  } catch {
    return undefined;
  }
  if (!isRecord(body)) return undefined;
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const rawMax = body.max_completion_tokens ?? body.max_tokens;
  const maxTokens = typeof rawMax === "number" && rawMax > 0 ? Math.floor(rawMax) : undefined;
  const tools: SimTool[] = [];
  if (Array.isArray(body.tools)) {
    for (const t of body.tools) {
      const fn = isRecord(t) && isRecord(t.function) ? t.function : undefined;
      if (fn && typeof fn.name === "string") tools.push({ name: fn.name, parameters: fn.parameters });
    }
  }
  const choice = body.tool_choice;
  const named =
    isRecord(choice) && isRecord(choice.function) && typeof choice.function.name === "string"
      ? choice.function.name
      : undefined;
  const at = named === undefined ? -1 : tools.findIndex((t) => t.name === named);
  if (at > 0) tools.unshift(...tools.splice(at, 1));
  const toolCallRequired = tools.length > 0 && (choice === "required" || at >= 0);
  const stop =
    typeof body.stop === "string"
      ? [body.stop]
      : Array.isArray(body.stop)
        ? body.stop.filter((s): s is string => typeof s === "string")
        : [];
  const hasImages = messages.some(
    (m) =>
      isRecord(m) && Array.isArray(m.content) && m.content.some((part) => isRecord(part) && part.type === "image_url"),
  );
  return { messages, maxTokens, tools, toolCallRequired, toolCallForbidden: choice === "none", stop, hasImages };
}

/**
 * The Mac's own prompt token count: the message text in o200k tokens (gpt-oss's vocabulary, as a real Mac's
 * tokenizer counts it) plus a small per-message template overhead, plus the tool schemas (they are rendered
 * into the prompt). Images count 256 tokens.
 */
export function countPromptTokens(req: SimChatRequest): number {
  let tokens = 3;
  for (const m of req.messages) {
    tokens += 4;
    if (!isRecord(m)) continue;
    if (typeof m.content === "string") tokens += textTokens(m.content);
    else if (Array.isArray(m.content)) {
      for (const part of m.content) {
        if (isRecord(part) && typeof part.text === "string") tokens += textTokens(part.text);
        else if (isRecord(part) && part.type === "image_url") tokens += 256;
      }
    }
    if (m.tool_calls !== undefined) tokens += textTokens(JSON.stringify(m.tool_calls));
  }
  for (const t of req.tools) tokens += textTokens(t.name + JSON.stringify(t.parameters ?? {})) + 8;
  return tokens;
}

// Counted, not estimated: the coordinator checks every usage claim against its own o200k count (src/usage/) and
// fences a provider that over-claims repeatedly. A ~4-characters-per-token estimate claimed 17,500 tokens for a
// 70,000-character run of "x" that counts 8,750, so a consumer sending ten such prompts got every honest
// simulated Mac fenced (found by the fuzz suite, test/fuzz/consumer-routes.test.ts).
function textTokens(s: string): number {
  return countTextTokens(s);
}

/** FNV-1a over the bytes, as an unsigned 32-bit seed. */
export function hashSeed(...parts: (string | Uint8Array)[]): number {
  let h = 0x811c9dc5;
  for (const part of parts) {
    const bytes = typeof part === "string" ? new TextEncoder().encode(part) : part;
    for (const b of bytes) {
      h ^= b;
      h = Math.imul(h, 0x01000193);
    }
    h ^= 0xff;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Natural answer length (tokens) in [min, max], chosen by the request seed. */
export function naturalLength(seed: number, min: number, max: number): number {
  const lo = Math.max(1, Math.min(min, max));
  const hi = Math.max(lo, max);
  return lo + Math.floor(mulberry32(seed ^ 0x9e3779b9)() * (hi - lo + 1));
}

const WORDS = (
  "the a of to and in that it is for on with as was at by this from be are or an have not they which one you " +
  "all were we when there can more if out so what time up about into than them only other new some could these " +
  "mac model token stream memory bandwidth silicon unified cache kernel batch decode prefill latency throughput " +
  "network provider request answer simple clear quiet river stone light bright garden morning window paper"
).split(" ");

/** Deterministic token texts: token i of the stream seeded by `seed`. Each token is one word with a space. */
export function wordStream(seed: number): () => string {
  const rnd = mulberry32(seed);
  let i = 0;
  return () => {
    const w = WORDS[Math.floor(rnd() * WORDS.length)]!;
    const text = i === 0 ? w[0]!.toUpperCase() + w.slice(1) : (rnd() < 0.07 ? ". " : " ") + w;
    i++;
    return text;
  };
}

/** Plausible JSON arguments for a tool whose parameters are a JSON schema, split into small fragments. */
export function toolArgumentFragments(tool: SimTool, seed: number): string[] {
  const rnd = mulberry32(seed ^ 0x51ed270b);
  const value = sampleSchema(tool.parameters, rnd, 0);
  const json = JSON.stringify(isRecord(value) ? value : {});
  const fragments: string[] = [];
  for (let i = 0; i < json.length; i += 6) fragments.push(json.slice(i, i + 6));
  return fragments;
}

function sampleSchema(schema: unknown, rnd: () => number, depth: number): unknown {
  if (!isRecord(schema) || depth > 4) return "x";
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[Math.floor(rnd() * schema.enum.length)];
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  switch (type) {
    case "object": {
      const out: Record<string, unknown> = {};
      const props = isRecord(schema.properties) ? schema.properties : {};
      for (const [k, v] of Object.entries(props)) out[k] = sampleSchema(v, rnd, depth + 1);
      return out;
    }
    case "array":
      return [sampleSchema(schema.items, rnd, depth + 1)];
    case "integer":
      return Math.floor(rnd() * 100);
    case "number":
      return Math.round(rnd() * 1000) / 10;
    case "boolean":
      return rnd() < 0.5;
    default:
      return WORDS[Math.floor(rnd() * WORDS.length)];
  }
}

/**
 * True when a tool schema contains a node whose `type` is present but not a string (e.g. `["string","null"]`)
 * or a property schema with no `type` at all: the shapes that crashed the chat template of old provider
 * builds, and that central schema repair must rewrite before dispatch.
 */
export function hasNullableOrUntypedSchema(tools: readonly SimTool[]): boolean {
  return tools.some((t) => badNode(t.parameters, true));
}

function badNode(node: unknown, root: boolean): boolean {
  if (!isRecord(node)) return false;
  if (
    "type" in node
      ? typeof node.type !== "string"
      : !root && !("anyOf" in node || "oneOf" in node || "$ref" in node || "enum" in node)
  ) {
    return true;
  }
  const children: unknown[] = [];
  if (isRecord(node.properties)) children.push(...Object.values(node.properties));
  if (node.items !== undefined) children.push(node.items);
  for (const key of ["anyOf", "oneOf", "allOf"] as const) if (Array.isArray(node[key])) children.push(...node[key]);
  return children.some((c) => badNode(c, false));
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}
