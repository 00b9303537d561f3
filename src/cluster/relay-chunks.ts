/**
 * A Mac's chunk cut into pieces a relay message can carry. One InferenceChunk may hold up to 131,072 characters
 * of text (wire-bounds.ts) in up to 1,024 deltas, each with a tool-call id and name besides: as JSON (up to 6 bytes
 * a character, escaped) that can pass NATS's 1 MiB message limit, and a publish over it throws. The pieces keep
 * the deltas' order and meaning: a long text is continued by further deltas of its kind (a tool call's arguments
 * by further deltas of the same index, its id and name on the first), which is how Macs stream them anyway.
 * Pure.
 */
import type { Delta } from "../inference/types.js";

/** JSON bytes of one piece at most (a delta's text bounded at 6 bytes a character, measured when that is too many). */
export const RELAY_PIECE_BYTES = 192 * 1024;
/** JSON bytes counted per character (the worst case: `\u00XX`), and per delta besides its text. */
const BYTES_PER_CHAR = 6;
const BYTES_PER_DELTA = 64;

const textOf = (d: Delta): string =>
  d.kind === "content" || d.kind === "reasoning" ? d.text : d.kind === "tool_call" ? (d.arguments ?? "") : "";

const labelsOf = (d: Delta): number =>
  d.kind === "role" ? d.role.length : d.kind === "tool_call" ? (d.id?.length ?? 0) + (d.name?.length ?? 0) : 0;

/** The cost of a delta in JSON bytes: bounded from above cheaply, measured only when the bound is too high. */
function costOf(d: Delta, maxBytes: number): number {
  const bound = BYTES_PER_DELTA + BYTES_PER_CHAR * (textOf(d).length + labelsOf(d));
  if (bound <= maxBytes) return bound;
  return BYTES_PER_DELTA + Buffer.byteLength(JSON.stringify(textOf(d))) + BYTES_PER_CHAR * labelsOf(d);
}

/** `d` with its text replaced (a continuation of a tool call carries only its index and arguments). */
function withText(d: Delta, text: string, first: boolean): Delta {
  if (d.kind === "content" || d.kind === "reasoning") return { kind: d.kind, text };
  if (d.kind === "tool_call")
    return first ? { ...d, arguments: text } : { kind: "tool_call", index: d.index, arguments: text };
  return d;
}

/** Splits `text` into slices of at most `max` characters, never between the halves of a surrogate pair. */
function slices(text: string, max: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    let end = Math.min(text.length, i + max);
    const code = text.charCodeAt(end - 1);
    if (end < text.length && end - i > 1 && code >= 0xd800 && code <= 0xdbff) end--;
    out.push(text.slice(i, end));
    i = end;
  }
  return out;
}

/** The deltas as consecutive pieces, each of at most {@link RELAY_PIECE_BYTES} estimated JSON bytes. */
export function relayPieces(deltas: readonly Delta[], maxBytes = RELAY_PIECE_BYTES): Delta[][] {
  const pieces: Delta[][] = [];
  let piece: Delta[] = [];
  let bytes = 0;
  const push = (d: Delta, cost = costOf(d, maxBytes)) => {
    if (piece.length > 0 && bytes + cost > maxBytes) {
      pieces.push(piece);
      piece = [];
      bytes = 0;
    }
    piece.push(d);
    bytes += cost;
  };
  for (const d of deltas) {
    const cost = costOf(d, maxBytes);
    if (cost <= maxBytes) {
      push(d, cost);
      continue;
    }
    // Room for the labels of the first slice; the text is cut in slices that fit a piece each.
    const perSlice = Math.max(1, Math.floor((maxBytes - BYTES_PER_DELTA) / BYTES_PER_CHAR) - labelsOf(d));
    const parts = slices(textOf(d), perSlice);
    for (let i = 0; i < parts.length; i++) push(withText(d, parts[i]!, i === 0));
  }
  if (piece.length > 0) pieces.push(piece);
  return pieces;
}
