/**
 * Writing a whole JSON response over node:http: the one writer behind every JSON answer, success or error
 * (errors go through a dialect's `sendError`, src/dialects/<dialect>/errors.ts, or src/http/send-error.ts).
 */
import type { ServerResponse } from "node:http";

/**
 * Writes a JSON response (no-op if the response already ended). A response sent before the request body was
 * read to its end (an early 401, 413 or 503) carries `connection: close`: the socket is closed once the answer
 * is flushed (after ConsumerServer's short linger), instead of reading the rest of the upload (issue 13).
 */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.writableEnded || res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
    ...(bodyUnread(res) ? { connection: "close" } : {}),
  });
  res.end(text);
}

/** Whether the request behind `res` carries a body that has not been read to its end. */
export function bodyUnread(res: ServerResponse): boolean {
  const req = res.req as ServerResponse["req"] | undefined;
  if (req === undefined || req.complete) return false;
  // A bodiless request (GET) is answered before the parser marks it complete: that is not an unread body.
  const length = req.headers["content-length"];
  return (length !== undefined && length !== "0") || req.headers["transfer-encoding"] !== undefined;
}
