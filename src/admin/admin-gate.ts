/**
 * The admin service's front door, in front of the Connect adapter. Connect reads a request's whole body before
 * any interceptor runs, and it allocates a buffer of the declared Content-Length up front: three
 * unauthenticated 300 MB uploads took the process from 125 MiB to 1,950 MiB (issue 13). The gate decides from
 * the headers alone (method, admin key, declared size) and only then lets the adapter read the body; the
 * adapter's own `readMaxBytes` bounds a body sent without a Content-Length. The service's interceptor still
 * checks the key as well.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Code } from "@connectrpc/connect";
import { AdminService } from "../../gen/coordinator/admin/v1/admin_pb.js";
import { sendContinue } from "../http/read-body.js";
import { reportRequestFaultsAsInvalid } from "./request-fault-status.js";
import { bodyUnread } from "../util/send-json.js";

export interface AdminGateOptions {
  /** ADMIN_KEY; empty = no key is accepted. */
  adminKey: string;
  /** Path prefixes of the guarded Connect services, e.g. `/coordinator.admin.v1.AdminService/`. */
  pathPrefixes: readonly string[];
  /** Largest request body (ADMIN_MAX_BODY_BYTES); larger declared → `resource_exhausted` before reading it. */
  maxBodyBytes: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** The admin service's Connect path prefix (every RPC of it, present and future, lives under it). */
export const adminServicePathPrefix = `/${AdminService.typeName}/`;

/** Wraps `next` (the Connect adapter): guarded paths pass only with the admin key and a body within the limit. */
export function adminGate(o: AdminGateOptions, next: Handler): Handler {
  const want = createHash("sha256").update(o.adminKey).digest();
  const authorised = (header: string | undefined): boolean => {
    const m = /^Bearer\s+(\S+)$/i.exec(header ?? "");
    const got = createHash("sha256")
      .update(m?.[1] ?? "")
      .digest();
    return m !== null && o.adminKey !== "" && timingSafeEqual(want, got);
  };
  return (req, res) => {
    const path = (req.url ?? "").split("?", 1)[0]!;
    if (!o.pathPrefixes.some((p) => path.startsWith(p))) return next(req, res);
    if (req.method !== "POST") {
      // Connect's own 405 names no method; ours does (and every admin RPC is a POST).
      res.writeHead(405, { allow: "POST", ...closeIfUnread(res) });
      res.end();
      return;
    }
    if (!authorised(req.headers.authorization)) {
      return connectError(req, res, Code.Unauthenticated, "admin key required (Authorization: Bearer $ADMIN_KEY)");
    }
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > o.maxBodyBytes) {
      return connectError(
        req,
        res,
        Code.ResourceExhausted,
        `request body of ${declared} bytes exceeds the admin limit of ${o.maxBodyBytes} bytes`,
      );
    }
    sendContinue(req, res);
    reportRequestFaultsAsInvalid(res);
    next(req, res);
  };
}

/** Connect code → [protocol name, HTTP status] (the Connect protocol's table, for the codes the gate sends). */
const connectCodes: Partial<Record<Code, [string, number]>> = {
  [Code.Unauthenticated]: ["unauthenticated", 401],
  [Code.ResourceExhausted]: ["resource_exhausted", 429],
};

/**
 * Writes an error the way the Connect adapter would: a Connect unary error body, or for gRPC-web a
 * trailers-only response (HTTP 200 with `grpc-status`). The upload behind it is never read: the connection
 * closes once the answer is flushed.
 */
function connectError(req: IncomingMessage, res: ServerResponse, code: Code, message: string): void {
  const [name, status] = connectCodes[code] ?? ["internal", 500];
  const contentType = req.headers["content-type"] ?? "";
  if (/^application\/grpc/i.test(contentType)) {
    res.writeHead(200, {
      "content-type": contentType,
      "grpc-status": String(code),
      "grpc-message": encodeURIComponent(message),
      ...closeIfUnread(res),
    });
    res.end();
    return;
  }
  const body = JSON.stringify({ code: name, message });
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...closeIfUnread(res),
  });
  res.end(body);
}

function closeIfUnread(res: ServerResponse): Record<string, string> {
  return bodyUnread(res) ? { connection: "close" } : {};
}
