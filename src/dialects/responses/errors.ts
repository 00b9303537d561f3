/**
 * Responses errors: OpenAI's shape (`{"error":{message,type,code,param}}`) for an error status. The in-band
 * stream error (render.ts) flattens the same fields into an `error` event.
 */
import { toOpenAIError, type CoordinatorError } from "../../errors/coordinator-error.js";

/** The dialect's error body. */
export function errorBody(e: CoordinatorError): ReturnType<typeof toOpenAIError> {
  return toOpenAIError(e);
}
