/**
 * The consumer API dialects by name. The HTTP edge picks one per route:
 * `/v1/chat/completions` → chat, `/v1/completions` → completions, `/v1/responses` → responses,
 * `/v1/messages` → messages. Apply {@link repairToolSchemas} to the raw body before `JSON.parse`.
 */
import { anthropicMessagesDialect } from "./anthropic/dialect.js";
import { chatCompletionsDialect } from "./chat/dialect.js";
import { completionsDialect } from "./completions/dialect.js";
import { responsesDialect } from "./responses/dialect.js";
import type { Dialect, DialectName } from "./shared/types.js";

export const dialects: Readonly<Record<DialectName, Dialect>> = Object.freeze({
  chat: chatCompletionsDialect,
  completions: completionsDialect,
  responses: responsesDialect,
  messages: anthropicMessagesDialect,
});

/** Whether a parsed body asked for usage in its stream (chat and completions `stream_options.include_usage`). */
export { chatIncludeUsage as includeUsageRequested } from "./chat/parse.js";
export { repairToolSchemas, needsRepair } from "./shared/tool-schema-repair.js";
export { estimatePromptTokens, promptBytesUpperBound } from "./shared/prompt-estimate.js";
export { RAW_PROMPT_FIELD } from "./completions/parse.js";
