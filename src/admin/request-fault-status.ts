/**
 * connect-es answers two faults of the *caller's* request as server faults: a binary body that does not decode
 * ("parse binary: …") and a gRPC-web envelope flagged compressed without a `grpc-encoding` ("received compressed
 * envelope, but do not know how to decompress") both come back as `internal` (HTTP 500, or grpc-status 13). Its
 * serialization layer is shared with clients, where a decode failure is the server's fault, and it offers no
 * hook to map the code. This wrapper rewrites exactly those two answers to `invalid_argument` (HTTP 400, or
 * grpc-status 3) on the way out; every other response passes through untouched. Admin responses are unary and
 * small, so holding one in memory until it ends is cheap.
 */
import type { ServerResponse } from "node:http";
import { Code } from "@connectrpc/connect";

/** The messages connect-es gives request faults it reports as `internal`. */
const REQUEST_FAULT = /^(parse binary: |received compressed envelope)/;

/** Makes `res` hold the response until it ends, then rewrites a request fault reported as internal. */
export function reportRequestFaultsAsInvalid(res: ServerResponse): void {
  const writeHead = res.writeHead.bind(res) as (status: number, headers?: Record<string, unknown>) => ServerResponse;
  const end = res.end.bind(res) as (chunk?: unknown) => ServerResponse;
  const chunks: Buffer[] = [];
  let head: { status: number; headers: Record<string, unknown> } | undefined;

  res.writeHead = ((status: number, headers?: Record<string, unknown>) => {
    head = { status, headers: { ...(headers ?? {}) } };
    return res;
  }) as ServerResponse["writeHead"];
  res.write = ((chunk: unknown, encodingOrCallback?: unknown, callback?: unknown) => {
    if (chunk !== undefined && chunk !== null) chunks.push(toBuffer(chunk));
    // Held, not sent: report it written at once (connect-node waits for the callback or 'drain').
    const cb = typeof encodingOrCallback === "function" ? encodingOrCallback : callback;
    if (typeof cb === "function") queueMicrotask(() => (cb as (e?: Error | null) => void)(null));
    return true;
  }) as ServerResponse["write"];
  res.end = ((chunk?: unknown) => {
    if (chunk !== undefined && chunk !== null && typeof chunk !== "function") chunks.push(toBuffer(chunk));
    let body: Buffer = Buffer.concat(chunks);
    let status = head?.status ?? res.statusCode;
    const headers = head?.headers ?? {};
    const rewritten =
      status === 500 ? rewriteConnectError(body) : status === 200 ? rewriteGrpcWebTrailer(body) : undefined;
    if (rewritten) {
      body = rewritten.body;
      status = rewritten.status;
      for (const k of Object.keys(headers)) if (k.toLowerCase() === "content-length") delete headers[k];
      if (res.hasHeader("content-length")) res.removeHeader("content-length");
      headers["content-length"] = body.length;
    }
    if (head || rewritten) writeHead(status, headers);
    return end(body);
  }) as ServerResponse["end"];
}

function toBuffer(chunk: unknown): Buffer {
  return Buffer.isBuffer(chunk)
    ? chunk
    : typeof chunk === "string"
      ? Buffer.from(chunk)
      : Buffer.from(chunk as Uint8Array);
}

/** A Connect unary error body `{"code":"internal","message":"parse binary: …"}` → 400 invalid_argument. */
function rewriteConnectError(body: Buffer): { status: number; body: Buffer } | undefined {
  let parsed: { code?: unknown; message?: unknown };
  try {
    parsed = JSON.parse(body.toString("utf8")) as typeof parsed;
  } catch {
    return undefined;
  }
  if (parsed.code !== "internal" || typeof parsed.message !== "string" || !REQUEST_FAULT.test(parsed.message))
    return undefined;
  return { status: 400, body: Buffer.from(JSON.stringify({ ...parsed, code: "invalid_argument" })) };
}

/**
 * A gRPC-web body whose trailer frame (flag 0x80) says `grpc-status: 13` with a request-fault message →
 * the same frames with `grpc-status: 3`.
 */
function rewriteGrpcWebTrailer(body: Buffer): { status: number; body: Buffer } | undefined {
  const frames: { flags: number; data: Buffer }[] = [];
  for (let pos = 0; pos < body.length; ) {
    if (pos + 5 > body.length) return undefined;
    const len = body.readUInt32BE(pos + 1);
    if (pos + 5 + len > body.length) return undefined;
    frames.push({ flags: body[pos]!, data: body.subarray(pos + 5, pos + 5 + len) });
    pos += 5 + len;
  }
  const trailer = frames.find((f) => (f.flags & 0x80) !== 0);
  if (!trailer) return undefined;
  const text = trailer.data.toString("utf8");
  const status = /^grpc-status:\s*(\d+)\s*$/im.exec(text)?.[1];
  const message = decodeURIComponent(/^grpc-message:\s*(.*?)\s*$/im.exec(text)?.[1] ?? "");
  if (status !== String(Code.Internal) || !REQUEST_FAULT.test(message)) return undefined;
  trailer.data = Buffer.from(text.replace(/^grpc-status:\s*\d+/im, `grpc-status: ${Code.InvalidArgument}`));
  const out = frames.map((f) => {
    const h = Buffer.alloc(5);
    h[0] = f.flags;
    h.writeUInt32BE(f.data.length, 1);
    return Buffer.concat([h, f.data]);
  });
  return { status: 200, body: Buffer.concat(out) };
}
