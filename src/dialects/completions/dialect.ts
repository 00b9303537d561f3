/**
 * The legacy OpenAI Completions dialect (`POST /v1/completions`): parse.ts reads the request, render.ts writes
 * the answer, errors.ts writes errors.
 */
import { isObject } from "../shared/request-fields.js";
import type { Dialect } from "../shared/types.js";
import { errorBody, sendError } from "./errors.js";
import { parseCompletionsRequest } from "./parse.js";
import { CompletionsAccumulator, CompletionsStreamRenderer } from "./render.js";

/** `POST /v1/completions`. `stream_options.include_usage` is read like chat's (`chatIncludeUsage`). */
export const completionsDialect: Dialect = {
  name: "completions",
  parse: parseCompletionsRequest,
  isStream: (body) => isObject(body) && body.stream === true,
  streamRenderer: (meta) => new CompletionsStreamRenderer(meta),
  accumulator: (meta) => new CompletionsAccumulator(meta),
  errorBody,
  sendError,
};
