/**
 * The Responses output state machine shared by the streaming renderer and the non-stream accumulator: it turns
 * typed deltas into output items (reasoning, message, function_call) and the lifecycle events the `openai`
 * SDK's ResponseStream accumulates, and builds the final Response object.
 *
 * States of the open item: none → reasoning | message | function_call. A delta of another kind (or another
 * tool-call index) closes the open item with its `.done` events and opens a new one. A late fragment for an
 * already closed tool call still streams as an arguments delta on its original item (engines emit calls in
 * order, so this is a graceful degrade, not a path we expect), and the final Response is always whole.
 */
import type { Delta, FinishReason, Usage } from "../../inference/types.js";
import type { JsonObject } from "../shared/request-fields.js";
import { effectiveFinishReason, ToolCallAssembler } from "../shared/tool-call-assembler.js";
import type { RenderMeta } from "../shared/types.js";

/** One Responses stream event, before its sequence number is assigned. */
export type ResponsesEvent = JsonObject & { type: string };

type OpenItem =
  | { kind: "message"; index: number; id: string; text: string }
  | { kind: "reasoning"; index: number; id: string; text: string }
  | { kind: "function_call"; index: number; id: string; toolIndex: number };

const textPart = (text: string): JsonObject => ({ type: "output_text", annotations: [], logprobs: [], text });
const reasoningPart = (text: string): JsonObject => ({ type: "reasoning_text", text });

/** The Responses usage object. */
export function responsesUsage(u: Usage): JsonObject {
  return {
    input_tokens: u.promptTokens,
    input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
    output_tokens: u.completionTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens },
    total_tokens: u.promptTokens + u.completionTokens,
  };
}

/** Request settings a Response object reports back as they were sent (OpenAI's Response echoes them). */
const ECHOED = [
  "instructions",
  "max_output_tokens",
  "metadata",
  "parallel_tool_calls",
  "temperature",
  "text",
  "tool_choice",
  "tools",
  "top_p",
  "user",
] as const;

function echoed(request: unknown): JsonObject {
  if (typeof request !== "object" || request === null) return {};
  const out: JsonObject = {};
  for (const k of ECHOED) {
    const v = (request as Record<string, unknown>)[k];
    if (v !== undefined && v !== null) out[k] = v as JsonObject[string];
  }
  return out;
}

export class ResponsesBuilder {
  readonly #meta: RenderMeta;
  readonly #tools: ToolCallAssembler;
  /** Final-form output items by output index. */
  readonly #output: JsonObject[] = [];
  /** Output index of each tool call, by tool-call index. */
  readonly #toolItems = new Map<number, number>();
  #open: OpenItem | undefined;

  constructor(meta: RenderMeta) {
    this.#meta = meta;
    this.#tools = new ToolCallAssembler(`call_${meta.requestId}_`);
  }

  /** The Response object in a given state (output items as built so far). */
  response(status: string, extra: JsonObject = {}): JsonObject {
    return {
      id: `resp_${this.#meta.requestId}`,
      object: "response",
      created_at: this.#meta.createdS,
      status,
      background: false,
      error: null,
      incomplete_details: null,
      instructions: null,
      max_output_tokens: null,
      metadata: {},
      model: this.#meta.model,
      output: this.#output.map((item) => structuredClone(item)),
      parallel_tool_calls: true,
      previous_response_id: null,
      reasoning: { effort: null, summary: null },
      store: false,
      temperature: null,
      text: { format: { type: "text" } },
      tool_choice: "auto",
      tools: [],
      top_p: null,
      truncation: "disabled",
      usage: null,
      ...echoed(this.#meta.request),
      ...extra,
    };
  }

  /** `response.created` and `response.in_progress`. */
  start(): ResponsesEvent[] {
    return [
      { type: "response.created", response: this.response("in_progress") },
      { type: "response.in_progress", response: this.response("in_progress") },
    ];
  }

  deltas(ds: readonly Delta[]): ResponsesEvent[] {
    const ev: ResponsesEvent[] = [];
    for (const d of ds) {
      if (d.kind === "role") continue;
      if (d.kind === "tool_call") this.#toolCall(d, ev);
      else this.#text(d.kind === "content" ? "message" : "reasoning", d.text, ev);
    }
    return ev;
  }

  #text(kind: "message" | "reasoning", text: string, ev: ResponsesEvent[]): void {
    if (this.#open?.kind !== kind) {
      this.#close(ev);
      const index = this.#output.length;
      const id = `${kind === "message" ? "msg" : "rs"}_${this.#meta.requestId}_${index}`;
      const item: JsonObject =
        kind === "message"
          ? { id, type: "message", status: "in_progress", role: "assistant", content: [] }
          : { id, type: "reasoning", status: "in_progress", summary: [], content: [] };
      this.#output.push(item);
      this.#open = { kind, index, id, text: "" };
      ev.push({ type: "response.output_item.added", output_index: index, item: structuredClone(item) });
      ev.push({
        type: "response.content_part.added",
        item_id: id,
        output_index: index,
        content_index: 0,
        part: kind === "message" ? textPart("") : reasoningPart(""),
      });
    }
    const open = this.#open as Extract<OpenItem, { kind: "message" | "reasoning" }>;
    open.text += text;
    const at = { item_id: open.id, output_index: open.index, content_index: 0 };
    ev.push(
      kind === "message"
        ? { type: "response.output_text.delta", ...at, delta: text, logprobs: [] }
        : { type: "response.reasoning_text.delta", ...at, delta: text },
    );
  }

  #toolCall(d: Extract<Delta, { kind: "tool_call" }>, ev: ResponsesEvent[]): void {
    const known = this.#toolItems.get(d.index);
    if (known === undefined) this.#close(ev);
    const { call } = this.#tools.add(d);
    if (known === undefined) {
      const index = this.#output.length;
      const id = `fc_${this.#meta.requestId}_${index}`;
      const item = {
        id,
        type: "function_call",
        status: "in_progress",
        arguments: "",
        call_id: call.id,
        name: call.name,
      };
      this.#output.push(item);
      this.#toolItems.set(d.index, index);
      this.#open = { kind: "function_call", index, id, toolIndex: d.index };
      ev.push({ type: "response.output_item.added", output_index: index, item: { ...item } });
    }
    const index = known ?? this.#toolItems.get(d.index)!;
    const item = this.#output[index]!;
    item.arguments = call.arguments;
    item.name = call.name;
    if (d.arguments !== undefined && d.arguments !== "") {
      ev.push({
        type: "response.function_call_arguments.delta",
        item_id: item.id,
        output_index: index,
        delta: d.arguments,
      });
    }
  }

  /** Emits the `.done` events of the open item and marks it `status` (completed, or incomplete when cut). */
  #close(ev: ResponsesEvent[], status: "completed" | "incomplete" = "completed"): void {
    const open = this.#open;
    if (open === undefined) return;
    this.#open = undefined;
    const item = this.#output[open.index]!;
    item.status = status;
    if (open.kind === "function_call") {
      ev.push({
        type: "response.function_call_arguments.done",
        item_id: open.id,
        output_index: open.index,
        name: item.name,
        arguments: item.arguments,
      });
    } else {
      const at = { item_id: open.id, output_index: open.index, content_index: 0 };
      const part = open.kind === "message" ? textPart(open.text) : reasoningPart(open.text);
      item.content = [part];
      ev.push(
        open.kind === "message"
          ? { type: "response.output_text.done", ...at, text: open.text, logprobs: [] }
          : { type: "response.reasoning_text.done", ...at, text: open.text },
      );
      ev.push({ type: "response.content_part.done", ...at, part });
    }
    ev.push({ type: "response.output_item.done", output_index: open.index, item: structuredClone(item) });
  }

  /**
   * Closes the open item and returns the terminal event: `response.completed`, or `response.incomplete` with
   * `incomplete_details.reason` when the output budget ran out (`max_output_tokens`) or a filter stopped it.
   */
  finish(reason: FinishReason, usage: Usage): { events: ResponsesEvent[]; response: JsonObject } {
    const events: ResponsesEvent[] = [];
    const final = effectiveFinishReason(reason, this.#tools.size > 0);
    const incomplete =
      final === "length" ? "max_output_tokens" : final === "content_filter" ? "content_filter" : undefined;
    // The item being written when the budget ran out is cut short: `incomplete`, as OpenAI marks it.
    const cut = incomplete === undefined ? undefined : this.#open?.index;
    this.#close(events, cut === undefined ? "completed" : "incomplete");
    // Items closed earlier are already completed; this also covers tool items touched by late fragments.
    this.#output.forEach((item, i) => {
      if (i !== cut) item.status = "completed";
    });
    const response = this.response(incomplete === undefined ? "completed" : "incomplete", {
      incomplete_details: incomplete === undefined ? null : { reason: incomplete },
      usage: responsesUsage(usage),
    });
    events.push({ type: incomplete === undefined ? "response.completed" : "response.incomplete", response });
    return { events, response };
  }
}
