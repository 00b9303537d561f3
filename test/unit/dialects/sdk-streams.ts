/**
 * Test helpers: run rendered SSE text through the official SDKs' own stream parsers and accumulators, so the
 * tests assert on exactly what a consumer's code would see.
 */
import { Stream as AnthropicStream } from "@anthropic-ai/sdk/core/streaming";
import { MessageStream } from "@anthropic-ai/sdk/lib/MessageStream";
import { ChatCompletionStream } from "openai/lib/ChatCompletionStream";
import { ResponseStream } from "openai/lib/responses/ResponseStream";
import { Stream as OpenAIStream } from "openai/core/streaming";
import type { ParseContext, RenderMeta } from "../../../src/dialects/shared/types.js";

export const ctx: ParseContext = { defaultMaxTokens: () => 4096 };

export function meta(overrides: Partial<RenderMeta> = {}): RenderMeta {
  return { requestId: "req_1", model: "qwen3-8b", createdS: 1_700_000_000, includeUsage: false, ...overrides };
}

function sseResponse(text: string): Response {
  return new Response(text, { headers: { "content-type": "text/event-stream" } });
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Items the openai SDK yields for an SSE body (throws what the SDK throws). */
export function openaiEvents<T = Record<string, any>>(text: string): Promise<T[]> {
  return collect(OpenAIStream.fromSSEResponse<T>(sseResponse(text), new AbortController()));
}

/** The openai SDK's accumulated chat completion for a chat SSE body. */
export function openaiFinalChat(text: string) {
  const s = OpenAIStream.fromSSEResponse<any>(sseResponse(text), new AbortController());
  return ChatCompletionStream.fromReadableStream(s.toReadableStream()).finalChatCompletion();
}

/** The openai SDK's accumulated Response for a Responses SSE body. */
export function openaiFinalResponse(text: string) {
  const s = OpenAIStream.fromSSEResponse<any>(sseResponse(text), new AbortController(), undefined, false);
  return ResponseStream.fromReadableStream(s.toReadableStream()).finalResponse();
}

/** Events the Anthropic SDK yields for an SSE body (throws what the SDK throws). */
export function anthropicEvents<T = Record<string, any>>(text: string): Promise<T[]> {
  return collect(AnthropicStream.fromSSEResponse<T>(sseResponse(text), new AbortController()));
}

/** The Anthropic SDK's accumulated Message for a Messages SSE body. */
export function anthropicFinalMessage(text: string) {
  const s = AnthropicStream.fromSSEResponse<any>(sseResponse(text), new AbortController());
  return MessageStream.fromReadableStream(s.toReadableStream()).finalMessage();
}

/** Splits named SSE text into `[event, data]` pairs (for exact sequence assertions). */
export function namedEvents(text: string): Array<{ event: string; data: any }> {
  return text
    .split("\n\n")
    .filter((b) => b.length > 0)
    .map((block) => {
      const [eventLine, dataLine] = block.split("\n");
      return { event: eventLine!.replace(/^event: /, ""), data: JSON.parse(dataLine!.replace(/^data: /, "")) };
    });
}
