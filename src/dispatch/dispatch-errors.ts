/** The consumer-facing errors a dispatch can end with, built in one place. */
import { CoordinatorError } from "../errors/coordinator-error.js";
import type { PickResult } from "../scheduler/types.js";

/** A structural refusal by the scheduler (nothing was dispatched). */
export function rejectError(d: PickResult & { kind: "reject" }): CoordinatorError {
  switch (d.code) {
    case "model_not_found":
      return new CoordinatorError("model_not_found", d.message, { param: "model", wireCode: "model_not_found" });
    case "context_overflow":
      return new CoordinatorError("invalid_request", d.message, {
        param: "messages",
        wireCode: "context_length_exceeded",
      });
    default:
      return new CoordinatorError("model_unavailable", d.message, { wireCode: "model_unavailable" });
  }
}

/**
 * Every attempt failed before content. Capacity-shaped last failures (or none at all) are a 429 the client
 * should retry; genuine provider faults are a 502 naming the last one.
 */
export function exhaustedError(
  model: string,
  attempts: number,
  last: { message: string; capacity: boolean } | undefined,
): CoordinatorError {
  if (!last || last.capacity) {
    return new CoordinatorError(
      "capacity_exhausted",
      `every capable provider for ${model} is at capacity; retry shortly`,
      {
        wireCode: "rate_limit_exceeded",
        retryAfterS: 2,
      },
    );
  }
  return new CoordinatorError("provider_failed", `inference failed after ${attempts} attempt(s): ${last.message}`, {
    wireCode: "provider_error",
  });
}

/** A deterministic provider error: the request itself cannot be served (e.g. it exceeds the context). */
export function deterministicError(message: string): CoordinatorError {
  return new CoordinatorError("invalid_request", message, { wireCode: "context_length_exceeded" });
}

/** A request refused for load before any attempt: shedding, never a failed dispatch or a 0 ms duration. */
export function isShed(error: CoordinatorError, attempts: number): boolean {
  return attempts === 0 && (error.code === "capacity_exhausted" || error.code === "rate_limited");
}
