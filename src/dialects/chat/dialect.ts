/**
 * The OpenAI Chat Completions dialect (`POST /v1/chat/completions`): parse.ts reads the request, render.ts
 * writes the answer, errors.ts writes errors.
 */
import { isObject } from "../shared/request-fields.js";
import type { Dialect } from "../shared/types.js";
import { errorBody, sendError } from "./errors.js";
import { parseChatRequest } from "./parse.js";
import { ChatAccumulator, ChatStreamRenderer } from "./render.js";

/** `POST /v1/chat/completions`. Read `stream_options.include_usage` with `chatIncludeUsage` (parse.ts). */
export const chatCompletionsDialect: Dialect = {
  name: "chat",
  parse: parseChatRequest,
  isStream: (body) => isObject(body) && body.stream === true,
  streamRenderer: (meta) => new ChatStreamRenderer(meta),
  accumulator: (meta) => new ChatAccumulator(meta),
  errorBody,
  sendError,
};
