/**
 * The coordinator's own prompt-token count for a normalized chat-completions body (the one every dialect
 * produces, see src/dialects/shared/provider-body.ts), used to check a provider's `promptTokens` claim.
 *
 * It walks the messages the way src/dialects/shared/prompt-estimate.ts does, but counts o200k_base tokens instead of
 * characters, scales them by the model's tokenizer family, and adds generous allowances for what the chat
 * template adds and we cannot see. Allowances err high on purpose: this number is a ceiling for claims, so
 * under-counting would flag honest providers.
 */
import { IMAGE_UPPER_BOUND_TOKENS } from "../dialects/shared/prompt-estimate.js";
import { countTextTokens } from "./token-counter.js";
import type { TokenizerFamily } from "./tokenizer-family.js";

/** Template tokens per message (role markers, separators, end-of-turn): gpt-oss uses 4-5, Gemma and Qwen ~5. */
export const MESSAGE_TEMPLATE_TOKENS = 8;
/**
 * Template tokens per request: gpt-oss's harmony template injects a ~61-token system message (model identity,
 * knowledge cutoff, date, reasoning level, channels) into every prompt, even "hi"; others add a generation
 * prompt of a few tokens.
 */
export const PROMPT_SLACK_TOKENS = 64;
/**
 * Template tokens added once when the request declares tools: Qwen's tool instructions are 86 o200k tokens,
 * harmony's tool preamble and developer-message headers ~30.
 */
export const TOOLS_TEMPLATE_TOKENS = 128;
/** Template tokens around each prior tool call (call markers, "name"/"arguments" keys, recipient). */
export const TOOL_CALL_TEMPLATE_TOKENS = 8;
/**
 * Tokens allowed per image: src/dialects/shared/prompt-estimate.ts's upper-bound allowance, not its 765-token
 * estimate, because local vision encoders (Gemma, Qwen-VL) spend 256 to ~1,300 tokens and more on large
 * images, and a short allowance would flag honest providers.
 */
export const IMAGE_TOKENS = IMAGE_UPPER_BOUND_TOKENS;

/**
 * Prompt tokens of a normalized chat-completions body for a model of `family`:
 * ceil(o200k tokens of all prompt text × family.scale) + {@link MESSAGE_TEMPLATE_TOKENS} per message
 * + {@link TOOL_CALL_TEMPLATE_TOKENS} per prior tool call + {@link TOOLS_TEMPLATE_TOKENS} when tools are
 * declared + {@link IMAGE_TOKENS} per image part + {@link PROMPT_SLACK_TOKENS}.
 *
 * Prompt text is every message's text content, `name`, `tool_call_id` and `reasoning_content`, each prior tool
 * call's function name and arguments, and the `tools` array as JSON (templates render schemas roughly as JSON;
 * harmony's TypeScript-style rendering is shorter, which only makes this more lenient). Malformed parts are
 * skipped, never thrown on. Cost: one linear pass, ~15 ms per 100 KB of code or markdown (see token-counter.ts).
 */
export function countPromptTokens(body: Readonly<Record<string, unknown>>, family: TokenizerFamily): number {
  const t: Tally = { text: 0, messages: 0, toolCalls: 0, images: 0 };
  if (Array.isArray(body.messages)) for (const m of body.messages) tallyMessage(t, m);
  const hasTools = Array.isArray(body.tools) && body.tools.length > 0;
  if (hasTools) t.text += countTextTokens(JSON.stringify(body.tools));
  return (
    Math.ceil(t.text * family.scale) +
    t.messages * MESSAGE_TEMPLATE_TOKENS +
    t.toolCalls * TOOL_CALL_TEMPLATE_TOKENS +
    (hasTools ? TOOLS_TEMPLATE_TOKENS : 0) +
    t.images * IMAGE_TOKENS +
    PROMPT_SLACK_TOKENS
  );
}

interface Tally {
  /** o200k tokens of prompt text, unscaled. */
  text: number;
  messages: number;
  toolCalls: number;
  images: number;
}

function tallyMessage(t: Tally, m: unknown): void {
  if (typeof m !== "object" || m === null) return;
  const msg = m as Record<string, unknown>;
  t.messages++;
  tallyContent(t, msg.content);
  for (const key of ["name", "tool_call_id", "reasoning_content"] as const) {
    const v = msg[key];
    if (typeof v === "string") t.text += countTextTokens(v);
  }
  if (!Array.isArray(msg.tool_calls)) return;
  for (const call of msg.tool_calls) {
    if (typeof call !== "object" || call === null) continue;
    t.toolCalls++;
    const fn = (call as Record<string, unknown>).function;
    if (typeof fn !== "object" || fn === null) continue;
    const { name, arguments: args } = fn as Record<string, unknown>;
    if (typeof name === "string") t.text += countTextTokens(name);
    if (typeof args === "string") t.text += countTextTokens(args);
  }
}

function tallyContent(t: Tally, content: unknown): void {
  if (typeof content === "string") {
    t.text += countTextTokens(content);
    return;
  }
  if (!Array.isArray(content)) return;
  for (const part of content) {
    if (typeof part !== "object" || part === null) continue;
    const p = part as Record<string, unknown>;
    if (p.type === "text" && typeof p.text === "string") t.text += countTextTokens(p.text);
    else if (p.type === "image_url") t.images++;
  }
}
