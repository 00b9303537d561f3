/**
 * The Anthropic Messages dialect (`POST /v1/messages`): parse.ts reads the request, render.ts writes the
 * answer, errors.ts writes errors.
 */
import { isObject } from "../shared/request-fields.js";
import type { Dialect } from "../shared/types.js";
import { errorBody, sendError } from "./errors.js";
import { parseAnthropicRequest } from "./parse.js";
import { AnthropicAccumulator, AnthropicStreamRenderer } from "./render.js";

/**
 * `POST /v1/messages`. Errors use Anthropic's shape (`{"type":"error","error":{type,message}}`); the HTTP edge
 * should accept `x-api-key` as well as Bearer auth on this route, as the Anthropic SDK sends `x-api-key`.
 */
export const anthropicMessagesDialect: Dialect = {
  name: "messages",
  parse: parseAnthropicRequest,
  isStream: (body) => isObject(body) && body.stream === true,
  streamRenderer: (meta) => new AnthropicStreamRenderer(meta),
  accumulator: (meta) => new AnthropicAccumulator(meta),
  errorBody,
  sendError,
};
