/** Reads a request body as UTF-8 under a size cap (413) and the shared in-flight budget (503). */
import type { IncomingMessage, ServerResponse } from "node:http";
import { CoordinatorError } from "../errors/coordinator-error.js";
import type { BodyBudget } from "./body-budget.js";

export interface ReadBodyOptions {
  /** Largest body accepted (MAX_BODY_BYTES); past it → 413. */
  maxBytes: number;
  /** Bytes of bodies held at once across requests; charged as the bytes arrive, released when `res` closes. */
  budget?: BodyBudget;
}

/**
 * Reads the whole body. Call only once the caller is authenticated: nothing is read before this. A refusal
 * (413, 503) leaves the rest of the upload unread; the error response then closes the connection (see
 * {@link sendJson}) instead of reading it to the end.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, o: ReadBodyOptions): Promise<string> {
  const { maxBytes, budget } = o;
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > maxBytes) return Promise.reject(tooLarge(maxBytes));
  // A body that cannot fit is refused before a byte of it is read.
  if (budget && declared > 0 && !budget.fits(declared)) return Promise.reject(busy());
  sendContinue(req, res);
  let charged = 0;
  if (budget) res.once("close", () => budget.release(charged));
  // Plain 'data'/'end' listeners, not `for await`: the async iterator costs a promise per chunk and ~1 % of the
  // coordinator's CPU per request under load (gateway benchmark profile); bodies are usually one chunk.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const fail = (e: Error) => {
      cleanup();
      reject(e);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > maxBytes) return fail(tooLarge(maxBytes));
      if (budget) {
        if (!budget.tryCharge(chunk.length)) return fail(busy());
        charged += chunk.length;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks, total).toString("utf8"));
    };
    // 'close' before 'end': the client went away mid-body (the iterator used to throw a premature close).
    const onClose = () => fail(Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" }));
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", fail);
      req.off("close", onClose);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", fail);
    req.on("close", onClose);
  });
}

const continued = new WeakSet<IncomingMessage>();

/**
 * Sends `100 Continue` to a caller that asked for it (`Expect: 100-continue`, as curl does for large bodies).
 * The server answers such requests only once they are authorised (ConsumerServer handles `checkContinue`
 * itself), so a refused caller never uploads its body at all. Idempotent.
 */
export function sendContinue(req: IncomingMessage, res: ServerResponse): void {
  if (continued.has(req) || !/100-continue/i.test(req.headers.expect ?? "")) return;
  continued.add(req);
  if (!res.headersSent) res.writeContinue();
}

function tooLarge(maxBytes: number): CoordinatorError {
  return new CoordinatorError(
    "payload_too_large",
    `request body exceeds ${maxBytes} bytes (${(maxBytes / (1024 * 1024)).toFixed(1).replace(/\.0$/, "")} MiB)`,
  );
}

function busy(): CoordinatorError {
  return new CoordinatorError("unavailable", "the server is receiving too many request bodies at once; retry shortly", {
    wireCode: "server_overloaded",
    retryAfterS: 1,
  });
}

/** Parses JSON, turning syntax errors into a clear 400. */
export function parseJson(text: string): unknown {
  if (text.trim() === "")
    throw new CoordinatorError("invalid_request", "request body is empty; expected a JSON object");
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CoordinatorError("invalid_request", `malformed JSON body: ${(e as Error).message}`, {
      wireCode: "invalid_json",
    });
  }
}
