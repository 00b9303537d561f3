/**
 * Prompt-size estimates over the normalized chat-completions messages every dialect produces.
 *
 * Two numbers with different jobs:
 * - {@link estimatePromptTokens} is a routing/TTFT estimate (about chars/4), like the Go coordinator's.
 * - {@link promptBytesUpperBound} is what the ledger reserves on: it must never be below the real prompt-token
 *   count, so it counts UTF-8 bytes (a BPE token always covers at least one byte) plus generous per-message
 *   and per-image allowances.
 *
 * Image cost: we charge OpenAI's published figures, 765 tokens for a high/auto-detail image (a 1024x1024
 * image tiled at 512px) and 85 for `detail: "low"`, rather than the Go coordinator's flat 300. Local vision
 * models (Gemma, Qwen-VL) spend 256 to ~1,300 tokens per image, so 765 sits inside that range, and the
 * upper bound uses a separate, larger allowance.
 */

/** Tokens counted per high- or auto-detail image in the estimate. */
export const IMAGE_TOKENS_HIGH = 765;
/** Tokens counted per `detail: "low"` image in the estimate. */
export const IMAGE_TOKENS_LOW = 85;
/** Per-image allowance in the upper bound (tokens): covers dynamic-resolution encoders on large images. */
export const IMAGE_UPPER_BOUND_TOKENS = 4_096;
/** Chat-template overhead per message (role markers, separators), in tokens. */
const MESSAGE_OVERHEAD_TOKENS = 4;
/** Same overhead in the upper bound: template markers are special tokens, each at most one "byte" of ours. */
const MESSAGE_OVERHEAD_UPPER = 16;
/**
 * Template tokens per request in the upper bound: at least the coordinator's own count's per-request (64) and
 * tools (128) allowances (src/usage/prompt-tokens.ts), so an honest count never exceeds the reservation.
 */
export const REQUEST_OVERHEAD_UPPER = 256;

interface Tally {
  textChars: number;
  textBytes: number;
  imagesHigh: number;
  imagesLow: number;
  messages: number;
}

function utf8Bytes(s: string): number {
  // A code-unit walk avoids TextEncoder's allocation on long prompts; a surrogate pair is 2 code units
  // counted 2 bytes each, i.e. the 4 bytes UTF-8 uses.
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdfff ? 2 : 3;
  }
  return n;
}

function addText(t: Tally, s: string): void {
  t.textChars += s.length;
  t.textBytes += utf8Bytes(s);
}

function tallyContent(t: Tally, content: unknown): void {
  if (typeof content === "string") {
    addText(t, content);
    return;
  }
  if (!Array.isArray(content)) return;
  for (const part of content) {
    if (typeof part !== "object" || part === null) continue;
    const p = part as Record<string, unknown>;
    if (p.type === "text" && typeof p.text === "string") addText(t, p.text);
    else if (p.type === "image_url") {
      const detail = (p.image_url as Record<string, unknown> | undefined)?.detail;
      if (detail === "low") t.imagesLow++;
      else t.imagesHigh++;
    }
  }
}

function tally(messages: readonly unknown[], tools: readonly unknown[] | undefined): Tally {
  const t: Tally = { textChars: 0, textBytes: 0, imagesHigh: 0, imagesLow: 0, messages: messages.length };
  for (const m of messages) {
    if (typeof m !== "object" || m === null) continue;
    const msg = m as Record<string, unknown>;
    tallyContent(t, msg.content);
    // Templates render these too, and the coordinator's own count (usage/prompt-tokens.ts) counts them.
    for (const key of ["name", "tool_call_id", "reasoning_content"] as const) {
      const v = msg[key];
      if (typeof v === "string") addText(t, v);
    }
    if (Array.isArray(msg.tool_calls)) addText(t, JSON.stringify(msg.tool_calls));
  }
  // Tool schemas are rendered into the prompt by the chat template, roughly as their JSON text.
  if (tools !== undefined && tools.length > 0) addText(t, JSON.stringify(tools));
  return t;
}

/** Estimated prompt tokens: ceil(chars/4) + per-message overhead + per-image cost (see the module notes). */
export function estimatePromptTokens(messages: readonly unknown[], tools?: readonly unknown[]): number {
  const t = tally(messages, tools);
  return (
    Math.ceil(t.textChars / 4) +
    t.messages * MESSAGE_OVERHEAD_TOKENS +
    t.imagesHigh * IMAGE_TOKENS_HIGH +
    t.imagesLow * IMAGE_TOKENS_LOW
  );
}

/**
 * An upper bound on prompt tokens for ledger reservations: UTF-8 bytes of all prompt text (names, tool schemas and
 * prior tool calls included; every BPE or SentencePiece token covers at least one byte, whatever the model's
 * tokenizer) + 16 per message + {@link IMAGE_UPPER_BOUND_TOKENS} per image + {@link REQUEST_OVERHEAD_UPPER}.
 * Settlement never charges past the reservation, so a bound below the real count under-bills (chars ÷ 2 was
 * 26 % of a dense CJK prompt's 38,028 tokens).
 */
export function promptBytesUpperBound(messages: readonly unknown[], tools?: readonly unknown[]): number {
  const t = tally(messages, tools);
  return (
    t.textBytes +
    t.messages * MESSAGE_OVERHEAD_UPPER +
    (t.imagesHigh + t.imagesLow) * IMAGE_UPPER_BOUND_TOKENS +
    REQUEST_OVERHEAD_UPPER
  );
}

/** True when any message carries an image part. */
export function requiresVision(messages: readonly unknown[]): boolean {
  const t = tally(messages, undefined);
  return t.imagesHigh + t.imagesLow > 0;
}

/** Exposed for tests: exact UTF-8 byte length without allocating. */
export function utf8ByteLength(s: string): number {
  return utf8Bytes(s);
}
