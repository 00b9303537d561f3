/**
 * What an API key chosen by an operator (`IssueApiKey.value`, `DEV_API_KEY`) must look like. Generated keys are
 * `sk-` + 32 base64url characters (192 bits). A chosen key needs `sk-` + at least {@link MIN_API_KEY_SECRET_CHARS}
 * characters of `[A-Za-z0-9_-]` (≥ 96 bits if random, far beyond what the failed-attempt throttle lets a sprayer
 * try): `"sk-"` alone, or `"sk-test"`, would be guessed by the first spray of wrong keys. 16, not more, so a
 * memorable development key such as `sk-newcomer-0123456789` still passes. At most {@link MAX_API_KEY_SECRET_CHARS}, so a key always fits in a header.
 */

/** Fewest secret characters after `sk-`. */
export const MIN_API_KEY_SECRET_CHARS = 16;
/** Most secret characters after `sk-`. */
export const MAX_API_KEY_SECRET_CHARS = 256;

const apiKeyPattern = new RegExp(`^sk-[A-Za-z0-9_-]{${MIN_API_KEY_SECRET_CHARS},${MAX_API_KEY_SECRET_CHARS}}$`);

/** Why `value` cannot be an API key, or undefined when it can. */
export function apiKeyFormatProblem(value: string): string | undefined {
  if (apiKeyPattern.test(value)) return undefined;
  return `an API key must be 'sk-' followed by ${MIN_API_KEY_SECRET_CHARS} to ${MAX_API_KEY_SECRET_CHARS} characters of A-Z a-z 0-9 _ - (got ${value.length} characters${value.startsWith("sk-") ? "" : " not starting with 'sk-'"})`;
}
