/**
 * Legacy Completions errors: OpenAI's shape (`{"error":{message,type,code,param}}`), as for chat, since the same
 * SDK clients call both routes.
 */
import type { ServerResponse } from "node:http";
import { toOpenAIError, type CoordinatorError } from "../../errors/coordinator-error.js";
import { sendErrorBody } from "../shared/send-error-body.js";
import type { SendErrorOptions } from "../shared/types.js";

/** The dialect's error body. */
export function errorBody(e: CoordinatorError): ReturnType<typeof toOpenAIError> {
  return toOpenAIError(e);
}

/**
 * Answers with `e` as an HTTP error in this dialect's shape. Every error status on the dialect's routes is
 * written here (src/http: the inference route, 405s, the route and global catches, the buffered sink).
 */
export function sendError(res: ServerResponse, e: CoordinatorError, options?: SendErrorOptions): void {
  sendErrorBody(res, e, errorBody(e), options);
}
