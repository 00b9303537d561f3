/**
 * Bounds on every value a provider sends, checked at the protocol edge (frames.ts) before anything reaches the
 * registry, the router, a log line or the ledger. Providers are strangers' machines: a frame that breaks one of
 * these rules is a protocol violation, and the session that sent it is closed with INVALID_ARGUMENT naming the
 * field. Honest providers never come near them.
 */

/** The limits, named as the README's "Trust model" section lists them. */
export const wireBounds = Object.freeze({
  /** Serials: `[A-Za-z0-9][A-Za-z0-9._:-]*`, at most this many characters. */
  maxSerialChars: 64,
  /** Model ids: `[A-Za-z0-9][A-Za-z0-9._:@+/-]*` (Hugging Face style allowed), at most this many characters. */
  maxModelIdChars: 128,
  /** Models in a Register, slots or warm models in a Heartbeat. */
  maxModelsPerProvider: 64,
  /** Version, chip names, quantization: printable, no control characters, at most this many characters. */
  maxLabelChars: 64,
  maxAuthTokenChars: 256,
  maxRequestIdChars: 64,
  /** Token counts in usage frames (a single request never comes near 16.7 M tokens). */
  maxUsageTokens: 16_777_216,
  /** Per-slot counters (running, waiting, max concurrency). */
  maxSlotCounter: 4_096,
  /** Model size on disk, bytes (2 TiB). */
  maxModelBytes: 2 ** 41,
  /** Context length, tokens. */
  maxContextTokens: 16_777_216,
  /** Deltas in one InferenceChunk. */
  maxDeltasPerChunk: 1_024,
  /**
   * Characters of text (content, reasoning, tool-call arguments) in one InferenceChunk. Streamed chunks carry a few
   * tokens, but a server that parses a tool call after generating it sends its arguments whole (a file written by a
   * coding agent: ~32k tokens of code fit). It bounds one frame's tokenizer pass on the event loop (on a 2-core
   * machine ~20 ms for code, up to ~0.4 s for random CJK, the worst text); a cluster relays a large chunk in pieces
   * (relay-chunks.ts).
   */
  maxChunkTextChars: 131_072,
  /** Tool-call delta index, id and name. */
  maxToolCallIndex: 255,
  maxToolCallIdChars: 128,
  maxToolNameChars: 256,
  maxRoleChars: 32,
  /** Error texts a provider sends are cut to this many characters (they reach logs and error bodies). */
  maxErrorMessageChars: 512,
});

/** A frame field that breaks a bound; the session is closed with this message. */
export class ProtocolViolation extends Error {
  override readonly name = "ProtocolViolation";
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

const SERIAL = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:@+/-]*$/;
// C0 and C1 controls, DEL, and the Unicode line/paragraph separators: nothing a label or id needs.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const CONTROL_GLOBAL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

export function checkSerial(value: string, field = "serial"): string {
  if (value === "") throw new ProtocolViolation(field, "required");
  if (value.length > wireBounds.maxSerialChars)
    throw new ProtocolViolation(field, `longer than ${wireBounds.maxSerialChars} characters`);
  if (!SERIAL.test(value)) throw new ProtocolViolation(field, "must match [A-Za-z0-9][A-Za-z0-9._:-]*");
  return value;
}

export function checkModelId(value: string, field: string): string {
  if (value === "") throw new ProtocolViolation(field, "required");
  if (value.length > wireBounds.maxModelIdChars)
    throw new ProtocolViolation(field, `longer than ${wireBounds.maxModelIdChars} characters`);
  if (!MODEL_ID.test(value)) throw new ProtocolViolation(field, "must match [A-Za-z0-9][A-Za-z0-9._:@+/-]*");
  return value;
}

/** True when `value` could be a model id (for text that is not from a provider, e.g. a consumer's `model`). */
export function isValidModelId(value: string): boolean {
  return value.length > 0 && value.length <= wireBounds.maxModelIdChars && MODEL_ID.test(value);
}

/** Printable text of at most `max` characters (empty allowed). */
export function checkLabel(value: string, field: string, max: number = wireBounds.maxLabelChars): string {
  if (value.length > max) throw new ProtocolViolation(field, `longer than ${max} characters`);
  if (CONTROL.test(value)) throw new ProtocolViolation(field, "contains control characters");
  return value;
}

/** An integer count in [0, max]. */
export function checkCount(value: number, field: string, max: number): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > max)
    throw new ProtocolViolation(field, `out of range (0..${max})`);
  return value;
}

/** A uint64 field as a number, in [0, max]. */
export function checkUint64(value: bigint, field: string, max: number): number {
  if (value < 0n || value > BigInt(max)) throw new ProtocolViolation(field, `out of range (0..${max})`);
  return Number(value);
}

/** Free text from a provider (error messages) made safe for logs and error bodies: cut and stripped of controls. */
export function sanitizeText(value: string, max: number = wireBounds.maxErrorMessageChars): string {
  // Never cut between the halves of a surrogate pair: a lone half is not text (it reaches logs and error bodies).
  const end = value.length > max && isHighSurrogate(value.charCodeAt(max - 1)) ? max - 1 : max;
  const cut = value.length > max ? `${value.slice(0, end)}…` : value;
  return cut.replace(CONTROL_GLOBAL, " ");
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
