/**
 * The error sender for the REST routes no dialect owns (/v1/models, /v1/me/*, health probes, unknown paths):
 * OpenAI's body, the shape the SDKs most consumers use already parse. Dialect routes use their dialect's
 * `sendError` (src/dialects/<dialect>/errors.ts) instead; the admin gate answers in Connect's own format.
 */
import type { ServerResponse } from "node:http";
import { sendErrorBody } from "../dialects/shared/send-error-body.js";
import type { SendErrorOptions } from "../dialects/shared/types.js";
import { toOpenAIError, type CoordinatorError } from "../errors/coordinator-error.js";

/** Answers with `e` as an HTTP error in OpenAI's shape. */
export function sendError(res: ServerResponse, e: CoordinatorError, options?: SendErrorOptions): void {
  sendErrorBody(res, e, toOpenAIError(e), options);
}
