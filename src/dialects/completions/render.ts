/**
 * Legacy Completions rendering (`POST /v1/completions`): `text_completion` chunks or one `text_completion`
 * object. Reasoning and tool-call deltas have no place in `text_completion` objects and are dropped.
 */
import type { CoordinatorError } from "../../errors/coordinator-error.js";
import type { Delta, FinishReason, Usage } from "../../inference/types.js";
import { openAIUsage } from "../chat/render.js";
import type { JsonObject } from "../shared/request-fields.js";
import { SSE_DONE, sseData } from "../shared/sse.js";
import type { RenderMeta, ResponseAccumulator, StreamRenderer } from "../shared/types.js";
import { errorBody } from "./errors.js";

function completionObject(meta: RenderMeta, choices: JsonObject[]): JsonObject {
  return {
    id: `cmpl-${meta.requestId}`,
    object: "text_completion",
    created: meta.createdS,
    model: meta.model,
    choices,
  };
}

/** `text_completion` knows stop, length and content_filter only. */
function legacyReason(reason: FinishReason): FinishReason {
  return reason === "tool_calls" ? "stop" : reason;
}

function textOf(ds: readonly Delta[]): string {
  let text = "";
  for (const d of ds) if (d.kind === "content") text += d.text;
  return text;
}

export class CompletionsStreamRenderer implements StreamRenderer {
  constructor(readonly meta: RenderMeta) {}

  start(): string {
    return ""; // legacy completions have no role preamble
  }

  deltas(ds: readonly Delta[]): string {
    const text = textOf(ds);
    if (text === "") return "";
    return sseData(completionObject(this.meta, [{ text, index: 0, logprobs: null, finish_reason: null }]));
  }

  finish(reason: FinishReason, usage: Usage): string {
    let out = sseData(
      completionObject(this.meta, [{ text: "", index: 0, logprobs: null, finish_reason: legacyReason(reason) }]),
    );
    if (this.meta.includeUsage) out += sseData({ ...completionObject(this.meta, []), usage: openAIUsage(usage) });
    return out + SSE_DONE;
  }

  error(e: CoordinatorError): string {
    return sseData(errorBody(e)) + SSE_DONE;
  }
}

export class CompletionsAccumulator implements ResponseAccumulator {
  #text = "";
  constructor(readonly meta: RenderMeta) {}

  deltas(ds: readonly Delta[]): void {
    this.#text += textOf(ds);
  }

  finish(reason: FinishReason, usage: Usage): unknown {
    return {
      ...completionObject(this.meta, [
        { text: this.#text, index: 0, logprobs: null, finish_reason: legacyReason(reason) },
      ]),
      usage: openAIUsage(usage),
    };
  }
}
