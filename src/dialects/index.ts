/**
 * The consumer API dialects by name. The HTTP edge picks one per route:
 * `/v1/chat/completions` → chat, `/v1/completions` → completions, `/v1/responses` → responses,
 * `/v1/messages` → messages. Apply {@link repairToolSchemas} to the raw body before `JSON.parse`.
 */
import { anthropicMessagesDialect } from "./anthropic-messages.js";
import { chatCompletionsDialect } from "./chat-completions.js";
import { completionsDialect } from "./completions.js";
import { responsesDialect } from "./responses.js";
import type { Dialect, DialectName } from "./types.js";

export const dialects: Readonly<Record<DialectName, Dialect>> = Object.freeze({
  chat: chatCompletionsDialect,
  completions: completionsDialect,
  responses: responsesDialect,
  messages: anthropicMessagesDialect,
});

/** Whether a parsed body asked for usage in its stream (chat and completions `stream_options.include_usage`). */
export { chatIncludeUsage as includeUsageRequested } from "./chat-request.js";
export { repairToolSchemas, needsRepair } from "./tool-schema-repair.js";
export { estimatePromptTokens, promptBytesUpperBound } from "./prompt-estimate.js";
export { RAW_PROMPT_FIELD } from "./completions.js";
