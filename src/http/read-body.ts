/** Reads a request body as UTF-8 with a size cap (413 past it). */
import type { IncomingMessage } from "node:http";
import { CoordinatorError } from "../errors/coordinator-error.js";

export async function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total).toString("utf8");
}

function tooLarge(maxBytes: number): CoordinatorError {
  return new CoordinatorError("payload_too_large", `request body exceeds ${Math.floor(maxBytes / (1024 * 1024))} MiB`);
}

/** Parses JSON, turning syntax errors into a clear 400. */
export function parseJson(text: string): unknown {
  if (text.trim() === "") throw new CoordinatorError("invalid_request", "request body is empty; expected a JSON object");
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CoordinatorError("invalid_request", `malformed JSON body: ${(e as Error).message}`, { wireCode: "invalid_json" });
  }
}
