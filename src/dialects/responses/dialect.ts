/**
 * The OpenAI Responses dialect (`POST /v1/responses`): parse.ts reads the request, render.ts writes the answer
 * (over builder.ts, the output state machine), errors.ts writes errors.
 */
import { isObject } from "../shared/request-fields.js";
import type { Dialect } from "../shared/types.js";
import { errorBody, sendError } from "./errors.js";
import { parseResponsesRequest } from "./parse.js";
import { ResponsesAccumulator, ResponsesStreamRenderer } from "./render.js";

/** `POST /v1/responses`. */
export const responsesDialect: Dialect = {
  name: "responses",
  parse: parseResponsesRequest,
  isStream: (body) => isObject(body) && body.stream === true,
  streamRenderer: (meta) => new ResponsesStreamRenderer(meta),
  accumulator: (meta) => new ResponsesAccumulator(meta),
  errorBody,
  sendError,
};
