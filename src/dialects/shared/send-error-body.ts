/**
 * The HTTP half of every dialect's `sendError` (src/dialects/<dialect>/errors.ts): the dialect picks the body,
 * this writes it with the status and headers the error implies, so the four agree on everything but the shape.
 */
import type { ServerResponse } from "node:http";
import { errorHeaders, type CoordinatorError } from "../../errors/coordinator-error.js";
import { sendJson } from "../../util/send-json.js";
import type { SendErrorOptions } from "./types.js";

/** Writes `body` as the response to `e`: `options.status ?? e.status`, `options.headers` then {@link errorHeaders}. */
export function sendErrorBody(
  res: ServerResponse,
  e: CoordinatorError,
  body: unknown,
  options: SendErrorOptions = {},
): void {
  sendJson(res, options.status ?? e.status, body, { ...options.headers, ...errorHeaders(e) });
}
