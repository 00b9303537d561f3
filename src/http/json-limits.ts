/**
 * Structural limits on a JSON request body, checked on the raw text before anything parses, repairs or
 * re-serialises it. `JSON.parse` copes with deep nesting, but the recursive code after it does not: an 8.5 KB
 * body nested ~4,150 deep overflowed the stack on re-serialisation and answered 500 (issue 13). One iterative
 * pass, no allocation per token: strings are skipped with `indexOf`, so the cost is in the structural
 * characters, a few tens of ms on a 16 MiB body at worst (see test/unit/http/json-limits.test.ts).
 */

/** Limits of one JSON document. Every count is inclusive: a value of exactly the limit is accepted. */
export interface JsonLimits {
  /** Deepest nesting of arrays and objects; the top-level object is depth 1. */
  maxDepth: number;
  /** Most elements of any one array. */
  maxArrayLength: number;
  /** Most members of any one object (duplicates counted). */
  maxObjectKeys: number;
  /** Longest string (keys included), counted in characters of the JSON text between the quotes, escapes as written. */
  maxStringChars: number;
}

/** The first limit a document exceeds: which one, the limit, and a message naming it. */
export interface JsonLimitViolation {
  limit: "depth" | "array_length" | "object_keys" | "string_length";
  max: number;
  message: string;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;

/**
 * Scans `text` and returns the first limit it exceeds, or undefined. Malformed JSON is not reported here (the
 * scan stops quietly at an unterminated string): the parser that runs next says what is wrong with it.
 */
export function checkJsonLimits(text: string, limits: JsonLimits): JsonLimitViolation | undefined {
  const { maxDepth, maxArrayLength, maxObjectKeys, maxStringChars } = limits;
  // Per open container: commas seen so far (elements - 1) and whether it is an object. Bounded by maxDepth.
  const commas = new Int32Array(maxDepth + 1);
  const isObject = new Uint8Array(maxDepth + 1);
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (end < 0) return undefined;
      if (end - i - 1 > maxStringChars) {
        return {
          limit: "string_length",
          max: maxStringChars,
          message: `a JSON string is longer than ${maxStringChars} characters`,
        };
      }
      i = end;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > maxDepth)
        return { limit: "depth", max: maxDepth, message: `JSON nesting is deeper than ${maxDepth} levels` };
      commas[depth] = 0;
      isObject[depth] = c === OPEN_OBJECT ? 1 : 0;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      if (depth > 0) depth--;
    } else if (c === COMMA && depth > 0) {
      // k commas separate k + 1 elements: the limit is passed at comma number `max`.
      const k = ++commas[depth]!;
      if (isObject[depth] === 1) {
        if (k >= maxObjectKeys)
          return {
            limit: "object_keys",
            max: maxObjectKeys,
            message: `a JSON object has more than ${maxObjectKeys} members`,
          };
      } else if (k >= maxArrayLength) {
        return {
          limit: "array_length",
          max: maxArrayLength,
          message: `a JSON array has more than ${maxArrayLength} elements`,
        };
      }
    }
  }
  return undefined;
}

/** Index of the quote closing the string that opens at `start`, or -1 when it is unterminated. */
function stringEnd(text: string, start: number): number {
  let from = start + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q < 0) return -1;
    // A quote preceded by an odd run of backslashes is escaped.
    let b = q - 1;
    while (text.charCodeAt(b) === BACKSLASH) b--;
    if ((q - 1 - b) % 2 === 0) return q;
    from = q + 1;
  }
}
