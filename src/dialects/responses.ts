/**
 * The OpenAI Responses dialect (`POST /v1/responses`): parsing in responses-request.ts, the output state
 * machine in responses-builder.ts. Streams are named events (`event: <type>\ndata: {...}`) with a
 * `sequence_number` starting at 0 and no `[DONE]` sentinel.
 *
 * Errors after commit are one `error` event carrying the flat fields the SDK's `ResponseErrorEvent` type
 * declares (`code`, `message`, `param`) plus a nested `error` object: the `openai` SDK's stream iterator throws
 * an `APIError` when an event's data has `error` (so a cut stream is never mistaken for a complete answer),
 * and the nested shape matches what the Go coordinator and OpenAI itself send.
 */
import { toOpenAIError, type CoordinatorError } from "../errors/coordinator-error.js";
import type { Delta, FinishReason, Usage } from "../inference/types.js";
import { isObject } from "./request-fields.js";
import { ResponsesBuilder, type ResponsesEvent } from "./responses-builder.js";
import { parseResponsesRequest } from "./responses-request.js";
import { sseEvent } from "./sse.js";
import type { Dialect, RenderMeta, ResponseAccumulator, StreamRenderer } from "./types.js";

class ResponsesStreamRenderer implements StreamRenderer {
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
    const { error } = toOpenAIError(e);
    return this.#emit([{ type: "error", code: error.code, message: error.message, param: error.param, error }]);
  }
}

class ResponsesAccumulator implements ResponseAccumulator {
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

/** `POST /v1/responses`. */
export const responsesDialect: Dialect = {
  name: "responses",
  parse: parseResponsesRequest,
  isStream: (body) => isObject(body) && body.stream === true,
  streamRenderer: (meta) => new ResponsesStreamRenderer(meta),
  accumulator: (meta) => new ResponsesAccumulator(meta),
  errorBody: (e) => toOpenAIError(e),
};

