/**
 * A minimal JSON scanner that locates the raw text of one top-level member of a JSON object, so a caller can
 * rewrite that member alone and leave every other byte of the document as it was.
 */

/** Half-open [start, end) offsets of a value in the source text. */
export interface Span {
  start: number;
  end: number;
}

function skipWs(s: string, i: number): number {
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** End offset (exclusive) of the string starting at `i` (which must be a quote), or -1. */
function stringEnd(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 0x5c)
      j++; // backslash: skip the escaped character
    else if (c === 0x22) return j + 1;
  }
  return -1;
}

/** End offset (exclusive) of the JSON value starting at `i`, or -1 when malformed or truncated. */
function valueEnd(s: string, i: number): number {
  const c = s[i];
  if (c === '"') return stringEnd(s, i);
  if (c === "{" || c === "[") {
    let depth = 0;
    for (let j = i; j < s.length; j++) {
      const d = s[j];
      if (d === '"') {
        j = stringEnd(s, j) - 1;
        if (j < 0) return -1;
      } else if (d === "{" || d === "[") depth++;
      else if (d === "}" || d === "]") {
        depth--;
        if (depth === 0) return j + 1;
      }
    }
    return -1;
  }
  // Scalar: runs to the next delimiter.
  let j = i;
  while (j < s.length && !",}] \n\r\t".includes(s[j]!)) j++;
  return j > i ? j : -1;
}

/**
 * The span of the value of top-level member `key` (the last one, as `JSON.parse` keeps the last duplicate),
 * `null` when the object has no such member, or `undefined` when the text is not a scannable JSON object.
 * Keys are compared after unescaping, so `"\u0074ools"` matches `tools`.
 */
export function topLevelMemberSpan(s: string, key: string): Span | null | undefined {
  let i = skipWs(s, 0);
  if (s[i] !== "{") return undefined;
  i = skipWs(s, i + 1);
  let found: Span | null = null;
  if (s[i] === "}") return found;
  for (;;) {
    if (s[i] !== '"') return undefined;
    const kEnd = stringEnd(s, i);
    if (kEnd < 0) return undefined;
    const rawKey = s.slice(i, kEnd);
    let k: string;
    try {
      k = rawKey.includes("\\") ? (JSON.parse(rawKey) as string) : rawKey.slice(1, -1);
    } catch {
      return undefined;
    }
    i = skipWs(s, kEnd);
    if (s[i] !== ":") return undefined;
    i = skipWs(s, i + 1);
    const vEnd = valueEnd(s, i);
    if (vEnd < 0) return undefined;
    if (k === key) found = { start: i, end: vEnd };
    i = skipWs(s, vEnd);
    if (s[i] === "}") return found;
    if (s[i] !== ",") return undefined;
    i = skipWs(s, i + 1);
  }
}
