/**
 * Small validators for consumer request bodies. Each throws `CoordinatorError("invalid_request")` naming the
 * offending field in `param`, so every dialect reports bad input the same way (a 400 the SDKs surface as
 * `BadRequestError` with `.param`).
 */
import { CoordinatorError } from "../../errors/coordinator-error.js";

/** A JSON object as parsed from a request body. */
export type JsonObject = Record<string, unknown>;

/** Builds the 400 every validator throws. */
export function invalid(param: string | undefined, message: string): CoordinatorError {
  return new CoordinatorError("invalid_request", message, param === undefined ? {} : { param });
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The request body itself must be a JSON object. */
export function requireBody(body: unknown): JsonObject {
  if (!isObject(body)) throw invalid(undefined, "request body must be a JSON object");
  return body;
}

export function requireObject(v: unknown, param: string): JsonObject {
  if (!isObject(v)) throw invalid(param, `'${param}' must be an object`);
  return v;
}

/** A required, non-empty string. */
export function requireString(v: unknown, param: string): string {
  if (v === undefined || v === null) throw invalid(param, `'${param}' is required`);
  if (typeof v !== "string") throw invalid(param, `'${param}' must be a string`);
  if (v.length === 0) throw invalid(param, `'${param}' must not be empty`);
  return v;
}

/** An optional string (`null` counts as absent, as in OpenAI's API). */
export function optString(v: unknown, param: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw invalid(param, `'${param}' must be a string`);
  return v;
}

export function optBoolean(v: unknown, param: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw invalid(param, `'${param}' must be a boolean`);
  return v;
}

/** An optional finite number within [min, max]. */
export function optNumber(v: unknown, param: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw invalid(param, `'${param}' must be a number`);
  if (v < min || v > max) throw invalid(param, `'${param}' must be between ${min} and ${max}`);
  return v;
}

export function optInteger(v: unknown, param: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw invalid(param, `'${param}' must be an integer`);
  return v;
}

/**
 * Largest output budget (`max_tokens` and its dialect spellings) a request may name: a billion tokens, beyond any
 * context window, so no real request meets it. Above it a hostile number could not be carried to a provider (the
 * wire field is uint32) nor priced sensibly; the caller gets 400 naming the field instead.
 */
export const MAX_OUTPUT_TOKENS_PARAM = 1_000_000_000;

/** An optional output budget (or other count): a positive integer, at most `max`. */
export function optPositiveInt(v: unknown, param: string, max = MAX_OUTPUT_TOKENS_PARAM): number | undefined {
  const n = optInteger(v, param);
  if (n !== undefined && n < 1) throw invalid(param, `'${param}' must be a positive integer`);
  if (n !== undefined && n > max) throw invalid(param, `'${param}' must be at most ${max}`);
  return n;
}

/** `stop`: a string or an array of non-empty strings; normalised to an array (undefined when empty). */
/**
 * Stop sequences one request may carry, and the longest: the Mac checks every one against its output as each token
 * is generated, so they are work done per token (OpenAI takes 4; Anthropic clients send a handful).
 */
export const MAX_STOP_SEQUENCES = 16;
export const MAX_STOP_SEQUENCE_CHARS = 256;

export function optStop(v: unknown, param: string, o: { arrayOnly?: boolean } = {}): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  const list = typeof v === "string" && !o.arrayOnly ? [v] : v;
  const shape = o.arrayOnly ? "an array of non-empty strings" : "a string or an array of non-empty strings";
  if (!Array.isArray(list) || !list.every((s) => typeof s === "string" && s.length > 0)) {
    throw invalid(param, `'${param}' must be ${shape}`);
  }
  if (list.length > MAX_STOP_SEQUENCES)
    throw invalid(param, `'${param}' holds ${list.length} sequences; at most ${MAX_STOP_SEQUENCES}`);
  if (list.some((s: string) => s.length > MAX_STOP_SEQUENCE_CHARS))
    throw invalid(param, `each of '${param}' must be at most ${MAX_STOP_SEQUENCE_CHARS} characters`);
  return list.length === 0 ? undefined : (list as string[]);
}

/** A required non-empty array. */
export function requireArray(v: unknown, param: string): unknown[] {
  if (v === undefined || v === null) throw invalid(param, `'${param}' is required`);
  if (!Array.isArray(v)) throw invalid(param, `'${param}' must be an array`);
  if (v.length === 0) throw invalid(param, `'${param}' must not be empty`);
  return v;
}

/** Copies the defined entries of `fields` onto `target` (so forwarded bodies carry no `undefined` keys). */
export function assignDefined(target: JsonObject, fields: JsonObject): JsonObject {
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) target[k] = v;
  return target;
}

/**
 * The reasoning efforts OpenAI's APIs take (`none` and `xhigh` are newer; Codex sends them), forwarded as they are;
 * anything else is refused, not forwarded to a Mac.
 */
export const REASONING_EFFORTS: readonly string[] = Object.freeze([
  "none",
  "minimal",
  "low",
  "medium",
  "high",
  "xhigh",
]);

export function optReasoningEffort(v: unknown, param: string): string | undefined {
  const effort = optString(v, param);
  if (effort !== undefined && !REASONING_EFFORTS.includes(effort))
    throw invalid(
      param,
      `unknown ${param} ${JSON.stringify(effort.slice(0, 32))}; one of ${REASONING_EFFORTS.join(", ")}`,
    );
  return effort;
}
