/**
 * The coordinator's own o200k_base token count (gpt-oss's vocabulary), so a provider's usage claim can be
 * checked against text the coordinator has seen: the prompt it forwarded and the deltas it streamed back.
 *
 * Counting is linear in the text. gpt-tokenizer's byte-pair merge is quadratic in the length of one regex piece
 * (a run of letters, CJK, spaces...), so text is counted in segments:
 * - a *soft* boundary sits before every space or tab whose preceding character is not whitespace. No o200k
 *   pre-tokenizer piece spans such a position (a piece holds a space after a non-space only if it is all
 *   whitespace), so counting either side separately gives exactly the unsplit count;
 * - a *hard* cut splits any segment still longer than {@link MAX_RUN_CHARS} (a base64 blob, CJK prose, a
 *   megabyte of "a"), never between the halves of a surrogate pair. A hard cut may cost a token or so
 *   against the unsplit count, well inside every tolerance we apply.
 * Segment positions depend on the text alone, so {@link OutputTokenCounter} fed in any delta sizes returns the
 * same number as {@link countTextTokens} on the joined text.
 *
 * Only the o200k module is imported (not gpt-tokenizer's main entry) so no other vocabulary loads. First import
 * costs ~0.4 s and ~20 MB of heap (~70 MB RSS) on the 2-core bench machine. Counting runs at ~7-10 MB/s on
 * prose, markdown and code (~10-15 ms per 100 KB) and ~0.7-1 MB/s on high-entropy text (base64, random CJK),
 * where every piece needs a byte-pair merge: linear, but worth keeping off the time-to-first-token path.
 */
import { countTokens, setMergeCacheSize } from "gpt-tokenizer/encoding/o200k_base";

/**
 * Longest run without a soft boundary handed to the byte-pair merge in one piece, in UTF-16 code units.
 * Measured on 1 MB of adversarial text: 1,000 gave 1.55 s for CJK (3 UTF-8 bytes a character feed the
 * quadratic merge), 256 gave 1.05 s, and 128 no longer helped (the per-pair lookups dominate). Hard cuts at
 * 256 moved counts by < 0.1% against 1,000.
 */
export const MAX_RUN_CHARS = 256;

/**
 * Entries in gpt-tokenizer's merge cache (its default is 100,000). The cache is keyed by piece text and lives
 * for the process, so a consumer sending distinct 256-character runs could pin ~150 MB at the default; 10,000
 * bounds it near 15 MB and measured no slower on prose, code or random text.
 */
export const MERGE_CACHE_ENTRIES = 10_000;

setMergeCacheSize(MERGE_CACHE_ENTRIES);

// Special-token strings ("<|endoftext|>", "<|im_start|>", ...) in consumer text are counted as the plain text
// they are; the library's default would throw on them.
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() } as const;

/** o200k_base tokens in `text`, counted in segments (see the module notes); 0 for "". */
export function countTextTokens(text: string): number {
  const c = new OutputTokenCounter();
  c.push(text);
  return c.tokens;
}

/**
 * Counts streamed output incrementally: {@link push} each text delta as it arrives, read {@link tokens} at any
 * time. Text up to the last soft boundary is counted once and forgotten; only the unfinished trailing segment
 * (usually one word, never more than {@link MAX_RUN_CHARS}) is kept, so the total cost is linear in the output
 * and reading `tokens` after every delta stays cheap.
 *
 * Use one counter per stream (content, reasoning, each tool call's arguments): a word split across two streams
 * would otherwise be counted as one.
 */
export class OutputTokenCounter {
  /** Tokens of text already flushed. */
  #counted = 0;
  /** Text since the last flushed boundary. */
  #pending = "";
  /** Index in `#pending` where the current segment began (the last soft boundary or hard cut). */
  #segmentStart = 0;
  /** Whether the last character pushed was whitespace; true at the start, so position 0 is no boundary. */
  #afterWhitespace = true;
  /** Memoized count of `#pending`, cleared by every push. */
  #pendingTokens: number | undefined = 0;

  /** Adds the next piece of output text. */
  push(text: string): void {
    if (text.length === 0) return;
    const buf = this.#pending + text;
    let flushed = 0;
    let soft = -1;
    let segmentStart = this.#segmentStart;
    let afterWhitespace = this.#afterWhitespace;
    for (let i = this.#pending.length; i < buf.length; i++) {
      const c = buf.charCodeAt(i);
      if ((c === 0x20 || c === 0x09) && !afterWhitespace) {
        soft = i;
        segmentStart = i;
      } else if (i - segmentStart >= MAX_RUN_CHARS) {
        // Keep a surrogate pair together: cutting between its halves would count two U+FFFD instead.
        const cut = isHighSurrogate(buf.charCodeAt(i - 1)) && i - 1 > segmentStart ? i - 1 : i;
        this.#counted += countTokens(buf.slice(flushed, cut), PLAIN_TEXT);
        flushed = cut;
        segmentStart = cut;
        soft = -1;
      }
      afterWhitespace = isWhitespace(c);
    }
    // Everything before the last soft boundary can be counted now, in one call: soft boundaries are exact.
    if (soft > flushed) {
      this.#counted += countTokens(buf.slice(flushed, soft), PLAIN_TEXT);
      flushed = soft;
    }
    this.#pending = buf.slice(flushed);
    this.#segmentStart = segmentStart - flushed;
    this.#afterWhitespace = afterWhitespace;
    this.#pendingTokens = undefined;
  }

  /** o200k_base tokens in everything pushed so far (the same as {@link countTextTokens} on the joined text). */
  get tokens(): number {
    this.#pendingTokens ??= this.#pending.length === 0 ? 0 : countTokens(this.#pending, PLAIN_TEXT);
    return this.#counted + this.#pendingTokens;
  }
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

/**
 * Exactly JavaScript's `\s` (the class the o200k split pattern uses). It must not be narrower: a soft boundary
 * after, say, U+00A0 would split a whitespace piece and stop being exact.
 */
export function isWhitespace(c: number): boolean {
  if (c < 0x80) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}
