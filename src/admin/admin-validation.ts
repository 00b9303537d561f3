/**
 * Checks on every admin RPC input, before anything reaches the database: text is well-formed (no lone
 * surrogates, which cannot be stored as UTF-8: Connect's decoders already refuse invalid UTF-8, this also covers
 * in-process callers), free of control characters (PostgreSQL refuses a NUL byte in
 * text, which used to surface as 500) and within a length; money, counts and times are within named bounds, so
 * no sum the ledger computes can overflow (see `src/ledger/money-bounds.ts`). A failed check throws
 * `invalid_request` naming the field, which the admin service answers as Connect `invalid_argument`. Pure.
 */
import { CoordinatorError } from "../errors/coordinator-error.js";

/** Lengths of admin text fields, in UTF-16 code units (README "Limits"). */
export const adminTextBounds = Object.freeze({
  /** Account, API key and provider token names. */
  maxNameChars: 200,
  /** Credit references (idempotency keys). */
  maxReferenceChars: 200,
  /** Account, key and token ids (ours are at most 41 characters: `ptok_` + a UUID). */
  maxIdChars: 64,
});

/** Latest `since_unix_ms` accepted (10^15 − 1 ms, year 33658; the same 15 digits as `GET /v1/me/usage?since_ms`). */
export const MAX_SINCE_UNIX_MS = 999_999_999_999_999n;

// C0 and C1 controls, DEL, and the Unicode line/paragraph separators (as for provider labels, wire-bounds.ts).
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function invalid(field: string, message: string): CoordinatorError {
  return new CoordinatorError("invalid_request", `${field} ${message}`, { param: field });
}

/** Checks text: well-formed, no control characters, at most `maxChars`; empty only when not `required`. */
export function checkText(value: string, field: string, o: { maxChars: number; required: boolean }): string {
  if (value === "") {
    if (o.required) throw invalid(field, "is required");
    return value;
  }
  if (value.length > o.maxChars) throw invalid(field, `must be at most ${o.maxChars} characters, got ${value.length}`);
  if (LONE_SURROGATE.test(value))
    throw invalid(field, "is not valid Unicode (a lone surrogate cannot be stored as UTF-8)");
  if (CONTROL.test(value)) throw invalid(field, "must not contain control characters (NUL, newlines, ...)");
  return value;
}

/** A required id (account, key, token): text of at most `maxIdChars`. Unknown ids are the store's `not_found`. */
export function checkId(value: string, field: string): string {
  return checkText(value, field, { maxChars: adminTextBounds.maxIdChars, required: true });
}

/** An optional name. */
export function checkName(value: string, field = "name"): string {
  return checkText(value, field, { maxChars: adminTextBounds.maxNameChars, required: false });
}

/** An integer amount within [min, max] (µUSD or µUSD per million tokens). */
export function checkAmount(value: bigint, field: string, min: bigint, max: bigint): bigint {
  if (value < min || value > max) throw invalid(field, `must be from ${min} to ${max}, got ${value}`);
  return value;
}

/** `since_unix_ms`: 0 (all time) to {@link MAX_SINCE_UNIX_MS}; returns undefined for 0. */
export function checkSinceUnixMs(value: bigint, field = "since_unix_ms"): number | undefined {
  checkAmount(value, field, 0n, MAX_SINCE_UNIX_MS);
  return value === 0n ? undefined : Number(value);
}
