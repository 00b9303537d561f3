/**
 * Anthropic Messages errors in Anthropic's shape (`{"type":"error","error":{type,message}}`), which the
 * Anthropic SDK parses: the body of an error status, and the data of an in-band `error` event after commit.
 */
import { toAnthropicError, type CoordinatorError } from "../../errors/coordinator-error.js";

/** The dialect's error body. */
export function errorBody(e: CoordinatorError): ReturnType<typeof toAnthropicError> {
  return toAnthropicError(e);
}
