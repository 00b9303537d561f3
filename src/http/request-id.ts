import { randomUUID } from "node:crypto";

/** A fresh request id (`req_` + 32 hex digits), named in every answer and in the ledger. */
export function newRequestId(): string {
  return `req_${randomUUID().replaceAll("-", "")}`;
}

/** The id under both names clients read: `x-request-id` (OpenAI clients log it), `request-id` (the Anthropic SDK). */
export function requestIdHeaders(requestId: string): Record<string, string> {
  return { "x-request-id": requestId, "request-id": requestId };
}
