/**
 * Chat Completions rendering (`POST /v1/chat/completions`): typed deltas as `chat.completion.chunk` SSE or one
 * `chat.completion` object.
 */
import type { CoordinatorError } from "../../errors/coordinator-error.js";
import type { Delta, FinishReason, Usage } from "../../inference/types.js";
import type { JsonObject } from "../shared/request-fields.js";
import { SSE_DONE, sseData } from "../shared/sse.js";
import { effectiveFinishReason, ToolCallAssembler } from "../shared/tool-call-assembler.js";
import type { RenderMeta, ResponseAccumulator, StreamRenderer } from "../shared/types.js";
import { errorBody } from "./errors.js";

/** OpenAI's usage object (with reasoning tokens in completion_tokens_details). */
export function openAIUsage(u: Usage): JsonObject {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    completion_tokens_details: { reasoning_tokens: u.reasoningTokens },
  };
}

/** Renders chat deltas as `chat.completion.chunk` events. */
export class ChatStreamRenderer implements StreamRenderer {
  readonly #meta: RenderMeta;
  readonly #tools: ToolCallAssembler;

  constructor(meta: RenderMeta) {
    this.#meta = meta;
    this.#tools = new ToolCallAssembler(`call_${meta.requestId}_`);
  }

  #chunk(delta: JsonObject, finishReason: FinishReason | null): string {
    return sseData({
      id: `chatcmpl-${this.#meta.requestId}`,
      object: "chat.completion.chunk",
      created: this.#meta.createdS,
      model: this.#meta.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    });
  }

  start(): string {
    // The role goes out once, at commit; provider role deltas are boilerplate and are not repeated.
    return this.#chunk({ role: "assistant", content: "" }, null);
  }

  deltas(ds: readonly Delta[]): string {
    let out = "";
    // Adjacent text deltas of one kind are merged into one chunk: fewer events, same text.
    let pending: { key: "content" | "reasoning_content"; text: string } | undefined;
    const flush = (): void => {
      if (pending !== undefined) out += this.#chunk({ [pending.key]: pending.text }, null);
      pending = undefined;
    };
    for (const d of ds) {
      if (d.kind === "role") continue;
      if (d.kind === "tool_call") {
        flush();
        const { call, first } = this.#tools.add(d);
        const fragment: JsonObject = first
          ? {
              index: call.index,
              id: call.id,
              type: "function",
              function: { name: call.name, arguments: d.arguments ?? "" },
            }
          : { index: call.index, function: { arguments: d.arguments ?? "" } };
        out += this.#chunk({ tool_calls: [fragment] }, null);
        continue;
      }
      const key = d.kind === "content" ? "content" : "reasoning_content";
      if (pending !== undefined && pending.key !== key) flush();
      pending = { key, text: (pending?.text ?? "") + d.text };
    }
    flush();
    return out;
  }

  finish(reason: FinishReason, usage: Usage): string {
    let out = this.#chunk({}, effectiveFinishReason(reason, this.#tools.size > 0));
    if (this.#meta.includeUsage) {
      out += sseData({
        id: `chatcmpl-${this.#meta.requestId}`,
        object: "chat.completion.chunk",
        created: this.#meta.createdS,
        model: this.#meta.model,
        choices: [],
        usage: openAIUsage(usage),
      });
    }
    return out + SSE_DONE;
  }

  error(e: CoordinatorError): string {
    return sseData(errorBody(e)) + SSE_DONE;
  }
}

/** Accumulates deltas into one `chat.completion` object. */
export class ChatAccumulator implements ResponseAccumulator {
  readonly #meta: RenderMeta;
  readonly #tools: ToolCallAssembler;
  #content = "";
  #reasoning = "";

  constructor(meta: RenderMeta) {
    this.#meta = meta;
    this.#tools = new ToolCallAssembler(`call_${meta.requestId}_`);
  }

  deltas(ds: readonly Delta[]): void {
    for (const d of ds) {
      if (d.kind === "content") this.#content += d.text;
      else if (d.kind === "reasoning") this.#reasoning += d.text;
      else if (d.kind === "tool_call") this.#tools.add(d);
    }
  }

  finish(reason: FinishReason, usage: Usage): unknown {
    const calls = this.#tools.list();
    const message: JsonObject = {
      role: "assistant",
      // OpenAI sends null content on a pure tool-call turn.
      content: this.#content === "" && calls.length > 0 ? null : this.#content,
      refusal: null,
    };
    if (this.#reasoning !== "") message.reasoning_content = this.#reasoning;
    if (calls.length > 0) {
      message.tool_calls = calls.map((c) => ({
        id: c.id,
        type: "function",
        function: { name: c.name, arguments: c.arguments },
      }));
    }
    return {
      id: `chatcmpl-${this.#meta.requestId}`,
      object: "chat.completion",
      created: this.#meta.createdS,
      model: this.#meta.model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: effectiveFinishReason(reason, calls.length > 0) }],
      usage: openAIUsage(usage),
    };
  }
}
