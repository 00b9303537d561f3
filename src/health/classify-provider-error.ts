/**
 * One classification of provider failures, shared by the breakers and the dispatcher's failover loop so the
 * two can never disagree about whose fault an error was. Pure.
 */
import type { ProviderErrorReason } from "../inference/types.js";

/**
 * - `sickness`: the provider is at fault (500, 502/disconnect, 504/accepted-then-silent or preamble timeout,
 *   template crash, internal error). Fail over; feeds the shape cooldown and the provider breaker.
 * - `capacity`: the provider is fine but cannot take this now (503, capacity, insufficient memory, model load
 *   failed, draining, provider-side cancel). Fail over, but cap these retries; never feeds a breaker.
 * - `client_error`: a 4xx about this request on this provider (e.g. 404 model not on that machine, 401/403
 *   from a misconfigured provider). Another provider may well serve it: fail over; never feeds a breaker.
 * - `deterministic`: the request itself cannot be served anywhere (context overflow, invalid request,
 *   400/413/422). Stop failover at once and return the error; never feeds a breaker.
 */
export type ErrorClass = "sickness" | "capacity" | "client_error" | "deterministic";

/** A provider failure as the dispatcher sees it (a provider `error` event, or a synthesized one). */
export interface ProviderFailure {
  statusCode: number;
  reason: ProviderErrorReason;
  message: string;
}

/**
 * Synthesized failures the dispatcher should classify through the same function, so that one table rules:
 * a stream that ended or a provider evicted mid-request is a 502, a first-token / accepted-then-silent /
 * preamble-to-content / post-commit idle timeout is a 504.
 */
export const DISCONNECT_STATUS = 502;
export const STALL_STATUS = 504;

// Message fragments older providers send with reason "unspecified" (S:api/consumer.go failover loop).
const DETERMINISTIC_MESSAGE = /exceeds?\b.*\bcontext|context (length|window)|batch token budget|maximum context/i;
const CAPACITY_MESSAGE =
  /insufficient memory|model load failed|token budget|kv headroom|not loaded|queue (is )?full|\bbusy\b|draining|overloaded/i;

/** Classifies a provider failure. The typed reason wins over the status code; message patterns are a fallback. */
export function classifyProviderError(e: ProviderFailure): ErrorClass {
  switch (e.reason) {
    case "context_overflow":
    case "invalid_request":
      return "deterministic";
    case "capacity":
    case "insufficient_memory":
    case "model_load_failed":
    case "draining":
    case "cancelled":
      return "capacity";
    case "template":
    case "internal":
      return "sickness";
    case "unspecified":
      break;
  }
  // Deterministic text beats a generic status (old providers send context overflow as a 500).
  if (DETERMINISTIC_MESSAGE.test(e.message)) return "deterministic";
  if (e.statusCode === 503 || e.statusCode === 429) return "capacity";
  if (e.statusCode >= 400 && e.statusCode < 500) {
    return e.statusCode === 400 || e.statusCode === 413 || e.statusCode === 422 ? "deterministic" : "client_error";
  }
  // Any other status (500, 502, 504, other 5xx, 0 / missing) is the provider's fault unless it says "busy".
  if (CAPACITY_MESSAGE.test(e.message)) return "capacity";
  return "sickness";
}

/** True for failures that should also start a (provider, model) load cooldown. */
export function isLoadRefusal(e: ProviderFailure): boolean {
  if (e.reason === "insufficient_memory" || e.reason === "model_load_failed") return true;
  return e.reason === "unspecified" && /insufficient memory|model load failed/i.test(e.message);
}

/** Maps a classification to what the health tracker records (deterministic errors count as client errors). */
export function outcomeKindOf(c: ErrorClass): "sickness" | "capacity" | "client_error" {
  return c === "deterministic" ? "client_error" : c;
}
