/**
 * Responses rendering (`POST /v1/responses`), over the output state machine in builder.ts. Streams are named
 * events (`event: <type>\ndata: {...}`) with a `sequence_number` starting at 0 and no `[DONE]` sentinel.
 *
 * Errors after commit are one `error` event carrying the flat fields the SDK's `ResponseErrorEvent` type
 * declares (`code`, `message`, `param`) plus a nested `error` object: the `openai` SDK's stream iterator throws
 * an `APIError` when an event's data has `error` (so a cut stream is never mistaken for a complete answer),
 * and the nested shape matches what the Go coordinator and OpenAI itself send.
 */
import type { CoordinatorError } from "../../errors/coordinator-error.js";
import type { Delta, FinishReason, Usage } from "../../inference/types.js";
import { sseEvent } from "../shared/sse.js";
import type { RenderMeta, ResponseAccumulator, StreamRenderer } from "../shared/types.js";
import { ResponsesBuilder, type ResponsesEvent } from "./builder.js";
import { errorBody } from "./errors.js";

export class ResponsesStreamRenderer implements StreamRenderer {
  readonly #builder: ResponsesBuilder;
  #seq = 0;

  constructor(meta: RenderMeta) {
    this.#builder = new ResponsesBuilder(meta);
  }

  #emit(events: readonly ResponsesEvent[]): string {
    return events.map((e) => sseEvent(e.type, { ...e, sequence_number: this.#seq++ })).join("");
  }

  start(): string {
    return this.#emit(this.#builder.start());
  }

  deltas(ds: readonly Delta[]): string {
    return this.#emit(this.#builder.deltas(ds));
  }

  finish(reason: FinishReason, usage: Usage): string {
    return this.#emit(this.#builder.finish(reason, usage).events);
  }

  error(e: CoordinatorError): string {
    const { error } = errorBody(e);
    return this.#emit([{ type: "error", code: error.code, message: error.message, param: error.param, error }]);
  }
}

export class ResponsesAccumulator implements ResponseAccumulator {
  readonly #builder: ResponsesBuilder;

  constructor(meta: RenderMeta) {
    this.#builder = new ResponsesBuilder(meta);
  }

  deltas(ds: readonly Delta[]): void {
    this.#builder.deltas(ds);
  }

  finish(reason: FinishReason, usage: Usage): unknown {
    // `output_text` is a convenience the SDKs compute client-side; OpenAI's wire object does not carry it.
    return this.#builder.finish(reason, usage).response;
  }
}
