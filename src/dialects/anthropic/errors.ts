/**
 * Anthropic Messages errors in Anthropic's shape (`{"type":"error","error":{type,message}}`), which the
 * Anthropic SDK parses: the body of an error status, and the data of an in-band `error` event after commit.
 */
import type { ServerResponse } from "node:http";
import { toAnthropicError, type CoordinatorError } from "../../errors/coordinator-error.js";
import { sendErrorBody } from "../shared/send-error-body.js";
import type { SendErrorOptions } from "../shared/types.js";

/** The dialect's error body. */
export function errorBody(e: CoordinatorError): ReturnType<typeof toAnthropicError> {
  return toAnthropicError(e);
}

/**
 * Answers with `e` as an HTTP error in this dialect's shape. Every error status on the dialect's routes is
 * written here (src/http: the inference route, 405s, the route and global catches, the buffered sink).
 */
export function sendError(res: ServerResponse, e: CoordinatorError, options?: SendErrorOptions): void {
  sendErrorBody(res, e, errorBody(e), options);
}
