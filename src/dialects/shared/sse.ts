/**
 * Server-sent-event framing shared by the dialect renderers. Pure string building: the HTTP edge writes the
 * returned text as is.
 */

/** One unnamed event (`data: {json}\n\n`), the framing Chat Completions and legacy Completions use. */
export function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

/** One named event (`event: <name>\ndata: {json}\n\n`), the framing Responses and Anthropic Messages use. */
export function sseEvent(name: string, payload: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`;
}

/** The OpenAI end-of-stream sentinel (Chat Completions and Completions only; Responses and Messages never send it). */
export const SSE_DONE = "data: [DONE]\n\n";
