/**
 * Anthropic Messages rendering (`POST /v1/messages`): typed deltas as Anthropic's event stream
 * (`message_start`, `ping`, `content_block_start/delta/stop`, `message_delta`, `message_stop`) or a non-stream
 * Message object.
 *
 * Content blocks are sequential: a delta of another kind (text, thinking, a tool call) closes the open block
 * and starts the next. A late fragment for an already closed tool call still streams as an `input_json_delta`
 * on its original block index (a graceful degrade; engines emit calls in order). Thinking blocks carry an
 * empty `signature`: providers are not Anthropic and cannot sign them.
 */
import type { CoordinatorError } from "../../errors/coordinator-error.js";
import type { Delta, FinishReason, Usage } from "../../inference/types.js";
import { isObject, type JsonObject } from "../shared/request-fields.js";
import { sseEvent } from "../shared/sse.js";
import { effectiveFinishReason, ToolCallAssembler } from "../shared/tool-call-assembler.js";
import type { RenderMeta, ResponseAccumulator, StreamRenderer } from "../shared/types.js";
import { errorBody } from "./errors.js";

const STOP_REASONS: Record<FinishReason, string> = {
  stop: "end_turn",
  length: "max_tokens",
  tool_calls: "tool_use",
  content_filter: "refusal",
};

type Block =
  | { type: "text"; text: string }
  | { type: "thinking"; thinking: string }
  | { type: "tool_use"; toolIndex: number };

/** Block state shared by the renderer and the accumulator. Methods return the events they imply. */
class MessageBuilder {
  readonly meta: RenderMeta;
  readonly tools: ToolCallAssembler;
  readonly blocks: Block[] = [];
  readonly #toolBlocks = new Map<number, number>();
  #open: number | undefined;

  constructor(meta: RenderMeta) {
    this.meta = meta;
    this.tools = new ToolCallAssembler(`toolu_${meta.requestId}_`);
  }

  deltas(ds: readonly Delta[]): JsonObject[] {
    const ev: JsonObject[] = [];
    for (const d of ds) {
      if (d.kind === "role") continue;
      if (d.kind === "tool_call") {
        const known = this.#toolBlocks.get(d.index);
        const { call } = this.tools.add(d);
        let index = known;
        if (index === undefined) {
          this.#close(ev);
          index = this.blocks.length;
          this.blocks.push({ type: "tool_use", toolIndex: d.index });
          this.#toolBlocks.set(d.index, index);
          this.#open = index;
          ev.push({
            type: "content_block_start",
            index,
            content_block: { type: "tool_use", id: call.id, name: call.name, input: {} },
          });
        }
        if (d.arguments !== undefined && d.arguments !== "") {
          ev.push({
            type: "content_block_delta",
            index,
            delta: { type: "input_json_delta", partial_json: d.arguments },
          });
        }
        continue;
      }
      const type = d.kind === "content" ? "text" : "thinking";
      let block = this.#open === undefined ? undefined : this.blocks[this.#open];
      if (block?.type !== type) {
        this.#close(ev);
        block = type === "text" ? { type, text: "" } : { type, thinking: "" };
        this.#open = this.blocks.length;
        this.blocks.push(block);
        const start = type === "text" ? { type, text: "", citations: null } : { type, thinking: "", signature: "" };
        ev.push({ type: "content_block_start", index: this.#open, content_block: start });
      }
      if (block.type === "text") block.text += d.text;
      else if (block.type === "thinking") block.thinking += d.text;
      const delta =
        type === "text" ? { type: "text_delta", text: d.text } : { type: "thinking_delta", thinking: d.text };
      ev.push({ type: "content_block_delta", index: this.#open, delta });
    }
    return ev;
  }

  #close(ev: JsonObject[]): void {
    if (this.#open !== undefined) ev.push({ type: "content_block_stop", index: this.#open });
    this.#open = undefined;
  }

  closeAll(): JsonObject[] {
    const ev: JsonObject[] = [];
    this.#close(ev);
    return ev;
  }

  stopReason(reason: FinishReason): string {
    return STOP_REASONS[effectiveFinishReason(reason, this.tools.size > 0)];
  }

  /** Final content blocks. Tool arguments that are not a JSON object become `{}` (Anthropic promises an object). */
  content(): JsonObject[] {
    const calls = new Map(this.tools.list().map((c) => [c.index, c]));
    return this.blocks.map((b) => {
      if (b.type === "text") return { type: "text", text: b.text, citations: null };
      if (b.type === "thinking") return { type: "thinking", thinking: b.thinking, signature: "" };
      const call = calls.get(b.toolIndex)!;
      let input: unknown = {};
      try {
        const parsed: unknown = call.arguments.trim() === "" ? {} : JSON.parse(call.arguments);
        if (isObject(parsed)) input = parsed;
      } catch {
        // keep {}
      }
      return { type: "tool_use", id: call.id, name: call.name, input };
    });
  }
}

function usageObject(input: number, output: number): JsonObject {
  return { input_tokens: input, output_tokens: output, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
}

function messageShell(meta: RenderMeta): JsonObject {
  return { id: `msg_${meta.requestId}`, type: "message", role: "assistant", model: meta.model };
}

export class AnthropicStreamRenderer implements StreamRenderer {
  readonly #b: MessageBuilder;

  constructor(meta: RenderMeta) {
    this.#b = new MessageBuilder(meta);
  }

  #emit(events: readonly JsonObject[]): string {
    return events.map((e) => sseEvent(e.type as string, e)).join("");
  }

  start(): string {
    const message = {
      ...messageShell(this.#b.meta),
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: usageObject(this.#b.meta.promptTokens ?? 0, 0),
    };
    return this.#emit([{ type: "message_start", message }, { type: "ping" }]);
  }

  deltas(ds: readonly Delta[]): string {
    return this.#emit(this.#b.deltas(ds));
  }

  finish(reason: FinishReason, usage: Usage): string {
    return this.#emit([
      ...this.#b.closeAll(),
      {
        type: "message_delta",
        delta: { stop_reason: this.#b.stopReason(reason), stop_sequence: null },
        usage: { input_tokens: usage.promptTokens, output_tokens: usage.completionTokens },
      },
      { type: "message_stop" },
    ]);
  }

  error(e: CoordinatorError): string {
    return sseEvent("error", errorBody(e));
  }
}

export class AnthropicAccumulator implements ResponseAccumulator {
  readonly #b: MessageBuilder;

  constructor(meta: RenderMeta) {
    this.#b = new MessageBuilder(meta);
  }

  deltas(ds: readonly Delta[]): void {
    this.#b.deltas(ds);
  }

  finish(reason: FinishReason, usage: Usage): unknown {
    return {
      ...messageShell(this.#b.meta),
      content: this.#b.content(),
      stop_reason: this.#b.stopReason(reason),
      stop_sequence: null,
      usage: usageObject(usage.promptTokens, usage.completionTokens),
    };
  }
}
