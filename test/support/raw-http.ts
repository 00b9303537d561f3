/**
 * HTTP/1.1 over a raw TCP socket, for what fetch hides: a declared Content-Length with a body that is sent
 * slowly or never, `Expect: 100-continue`, interim responses, and whether the server closed the connection.
 */
import { connect, type Socket } from "node:net";

export interface RawRequest {
  method?: string;
  path: string;
  headers?: Record<string, string | number>;
  /** Body bytes sent right after the headers. */
  body?: string | Buffer;
  /** After `body`, keep sending filler bytes (backpressure honoured) until this many body bytes went out or the response arrived. */
  uploadBytes?: number;
  /** Wait for the server to close after the response, at most this long (default 3000 after `connection: close`, else 0). */
  closeWaitMs?: number;
  /** Give up waiting for a response after this long (default 10000); the result then has status 0. */
  responseTimeoutMs?: number;
  /** Called with the socket once the request head is written (e.g. to send the body later). */
  onOpen?(socket: Socket): void;
}

export interface RawResponse {
  /** Status of the final response (interim 1xx excluded); 0 if none arrived. */
  status: number;
  /** Interim statuses seen before it (e.g. [100]). */
  interim: number[];
  headers: Record<string, string>;
  body: string;
  /** Whether the server closed the connection (within closeWaitMs of the response). */
  closed: boolean;
  /** Body bytes the client managed to write. */
  bytesSent: number;
  /** ms from the first byte written to the response (or to giving up). */
  elapsedMs: number;
}

/** Sends one request on a fresh connection and reads one response. */
export function rawRequest(port: number, r: RawRequest): Promise<RawResponse> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    const started = performance.now();
    let buf = Buffer.alloc(0);
    let closed = false;
    let bytesSent = 0;
    let final: Omit<RawResponse, "closed" | "bytesSent" | "elapsedMs"> | undefined;
    const interim: number[] = [];
    let elapsedMs = 0;
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(responseTimer);
      clearTimeout(closeTimer);
      if (!closed) socket.destroy();
      resolve({
        ...(final ?? { status: 0, interim, headers: {}, body: "" }),
        closed,
        bytesSent,
        elapsedMs: elapsedMs || performance.now() - started,
      });
    };
    let closeTimer: NodeJS.Timeout | undefined;
    const responseTimer = setTimeout(finish, r.responseTimeoutMs ?? 10_000);
    const parse = () => {
      for (;;) {
        if (final) return;
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.subarray(0, end).toString("latin1").split("\r\n");
        const status = Number(head[0]!.split(" ")[1]);
        const headers: Record<string, string> = {};
        for (const line of head.slice(1)) {
          const i = line.indexOf(":");
          headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
        }
        if (status >= 100 && status < 200) {
          interim.push(status);
          buf = buf.subarray(end + 4);
          continue;
        }
        const length = Number(headers["content-length"] ?? "0");
        if (buf.length < end + 4 + length) return;
        final = { status, interim, headers, body: buf.subarray(end + 4, end + 4 + length).toString("utf8") };
        elapsedMs = performance.now() - started;
        if (closed) return finish();
        closeTimer = setTimeout(finish, r.closeWaitMs ?? (headers.connection === "close" ? 3_000 : 0));
        return;
      }
    };
    socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      parse();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      closed = true;
      if (final || !settled) finish();
    });
    const headers = { host: `127.0.0.1:${port}`, ...r.headers };
    const head = [
      `${r.method ?? "POST"} ${r.path} HTTP/1.1`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      "",
      "",
    ].join("\r\n");
    socket.write(head);
    if (r.body !== undefined) {
      socket.write(r.body);
      bytesSent += Buffer.byteLength(r.body);
    }
    r.onOpen?.(socket);
    if (r.uploadBytes !== undefined) {
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (!final && !closed && bytesSent < r.uploadBytes!) {
          const n = Math.min(chunk.length, r.uploadBytes! - bytesSent);
          bytesSent += n;
          if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void socket.once("drain", pump);
        }
      };
      pump();
    }
  });
}

/** JSON body of a raw response. */
export function jsonOf(r: RawResponse): Record<string, unknown> {
  return JSON.parse(r.body) as Record<string, unknown>;
}

/** `obj` as JSON of exactly `bytes` bytes (ASCII), padded with a `pad` array of strings of at most 1 MiB each. */
export function jsonOfSize(obj: Record<string, unknown>, bytes: number): string {
  const pad: string[] = [];
  let remaining = bytes - JSON.stringify({ ...obj, pad }).length;
  while (remaining > 0) {
    const overhead = pad.length === 0 ? 2 : 3; // quotes, and a comma after the first
    const n = Math.min(1024 * 1024, remaining - overhead);
    if (n < 0) throw new Error(`cannot pad to exactly ${bytes} bytes`);
    pad.push("x".repeat(n));
    remaining -= n + overhead;
  }
  const text = JSON.stringify({ ...obj, pad });
  if (text.length !== bytes) throw new Error(`padded to ${text.length}, wanted ${bytes}`);
  return text;
}
