/**
 * The OpenAI/Anthropic-compatible REST surface, served as the Connect adapter's fallback so one HTTP server
 * carries both. Every error, including unknown routes, uses the one error type and the caller's dialect.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { dialects } from "../dialects/index.js";
import { optBoolean } from "../dialects/shared/request-fields.js";
import type { Dialect, SendErrorOptions } from "../dialects/shared/types.js";
import { CoordinatorError } from "../errors/coordinator-error.js";
import { checkSerial } from "../protocol/wire-bounds.js";
import { recordHttpFinish } from "./request-metrics.js";
import { authenticate } from "./auth.js";
import { handleInference, type InferenceDeps } from "./inference-route.js";
import { modelNotFound, requireKnownModel, type ModelListEntry } from "../models/model-catalog.js";
import { parseJson, readBody } from "./read-body.js";
import {
  assertJsonWithinLimits,
  assertRequestWithinLimits,
  assertUserFieldsWithinLimits,
  parseContextFor,
} from "./request-limits.js";
import { newRequestId, requestIdHeaders } from "./request-id.js";
import { sendError } from "./send-error.js";
import { sendJson } from "../util/send-json.js";

export interface RouteDeps extends InferenceDeps {
  /** The public capacity snapshot (the caller caches it). */
  capacity(): unknown;
  health(): Record<string, unknown>;
  /** What /readyz answers (see {@link Readiness}). */
  readiness(): Readiness;
  usage(accountId: string, sinceMs: number | undefined): Promise<Record<string, unknown>>;
  /** The provider machines the account owns: serial ↔ opaque id, connection and fence state. */
  ownedProviders(accountId: string): Promise<Record<string, unknown>[]>;
  /** Forgets one of the account's machines (lifts a fence; the next registration binds the serial afresh). False if not the account's. */
  forgetOwnedProvider(accountId: string, serial: string): Promise<boolean>;
  /** `Access-Control-Allow-Origin` for browser callers; absent = no CORS headers. */
  corsAllowOrigin?: string;
}

/**
 * Whether this replica should get traffic: `ready` only once the ledger schema is migrated, the ledger is writing
 * (its last flush succeeded) and the process is not draining. `checks` names each condition: "ok" or why not.
 */
export interface Readiness {
  ready: boolean;
  checks: Readonly<Record<string, string>>;
}

/** Response headers a browser caller may read (request id, rate limits, retry hints). */
const exposedHeaders = [
  "x-request-id",
  "request-id",
  "retry-after",
  "x-route",
  ...["limit", "remaining", "reset"].flatMap((k) =>
    ["requests", "input-tokens", "output-tokens"].map((d) => `x-ratelimit-${k}-${d}`),
  ),
  "x-ratelimit-limit-concurrent-requests",
  "x-ratelimit-remaining-concurrent-requests",
].join(", ");

const inferenceRoutes: Record<string, Dialect> = {
  "/v1/chat/completions": dialects.chat,
  "/v1/completions": dialects.completions,
  "/v1/responses": dialects.responses,
  "/v1/messages": dialects.messages,
};

/** Returns the Node request handler for the REST routes. */
export function restHandler(deps: RouteDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const cors = deps.corsAllowOrigin;
  return (req, res) => {
    // Only browsers send Origin: server-to-server traffic pays nothing for CORS.
    if (cors !== undefined && req.headers.origin !== undefined) {
      res.setHeader("access-control-allow-origin", cors);
      if (cors !== "*") res.setHeader("vary", "origin");
      res.setHeader("access-control-expose-headers", exposedHeaders);
      if (req.method === "OPTIONS") return corsPreflight(req, res);
    }
    const started = performance.now();
    res.on("finish", () => recordHttpFinish(req, res, performance.now() - started));
    const path = pathOf(req);
    void route(deps, req, res, path).catch((e) => {
      const err = CoordinatorError.from(e);
      deps.log?.("unhandled route error", { error: String((e as Error)?.stack ?? e) });
      sendErrorFor(path)(res, err);
    });
  };
}

/** The request path without a trailing slash ("/" for an unparsable target: it matches no route). */
function pathOf(req: IncomingMessage): string {
  try {
    return new URL(req.url ?? "/", "http://localhost").pathname.replace(/\/+$/, "") || "/";
  } catch {
    return "/";
  }
}

type SendError = (res: ServerResponse, e: CoordinatorError, options?: SendErrorOptions) => void;

/** Each dialect's error shape on every path of its routes: Anthropic under /v1/messages, OpenAI elsewhere. */
function sendErrorFor(path: string): SendError {
  return path === "/v1/messages" || path.startsWith("/v1/messages/") ? dialects.messages.sendError : sendError;
}

/** GET routes also answer HEAD (node:http drops the body). */
const readMethods = new Set(["GET", "HEAD"]);

async function route(deps: RouteDeps, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const method = req.method ?? "GET";

  const dialect = inferenceRoutes[path];
  if (dialect && method === "POST") return handleInference(deps, dialect, req, res);
  // Every answer names itself, so a consumer can quote it in a support request (inference sets its own).
  for (const [name, value] of Object.entries(requestIdHeaders(newRequestId()))) res.setHeader(name, value);
  if (dialect) return methodNotAllowed(res, "POST", dialect);
  try {
    switch (path) {
      case "/health":
      case "/healthz": {
        if (!readMethods.has(method)) return methodNotAllowed(res, "GET, HEAD");
        // 503 while draining, so load balancers stop sending new work here.
        const h = deps.health();
        return sendJson(res, h.status === "draining" ? 503 : 200, h);
      }
      // Kubernetes-style probes: liveness never depends on the database or draining (a restart would not fix either).
      case "/livez":
        if (!readMethods.has(method)) return methodNotAllowed(res, "GET, HEAD");
        return sendJson(res, 200, { status: "ok" }, { "cache-control": "no-store" });
      case "/readyz": {
        if (!readMethods.has(method)) return methodNotAllowed(res, "GET, HEAD");
        const r = deps.readiness();
        return sendJson(
          res,
          r.ready ? 200 : 503,
          { status: r.ready ? "ready" : "not_ready", checks: r.checks },
          { "cache-control": "no-store" },
        );
      }
      case "/v1/models/capacity":
        if (!readMethods.has(method)) return methodNotAllowed(res, "GET, HEAD");
        return sendJson(res, 200, deps.capacity(), { "cache-control": "public, max-age=2" });
      case "/v1/models": {
        if (!readMethods.has(method)) return methodNotAllowed(res, "GET, HEAD");
        await authenticate(req, deps);
        return sendJson(res, 200, { object: "list", data: deps.models.list().map(modelObject) });
      }
      case "/v1/messages/count_tokens": {
        if (method !== "POST") return methodNotAllowed(res, "POST", dialects.messages);
        await authenticate(req, deps);
        const raw = await readBody(req, res, { maxBytes: deps.maxBodyBytes, budget: deps.bodyBudget });
        assertJsonWithinLimits(raw, deps.limits);
        const body = parseJson(raw);
        assertUserFieldsWithinLimits(body, deps.limits);
        // count_tokens bodies carry no max_tokens; the estimate depends on neither it nor streaming, but a
        // `stream` that is not a boolean is still the caller's mistake.
        if (typeof body === "object" && body !== null && "stream" in body)
          optBoolean((body as { stream: unknown }).stream, "stream");
        const withBudget = typeof body === "object" && body !== null ? { max_tokens: 1, ...body, stream: false } : body;
        const n = dialects.messages.parse(withBudget, parseContextFor(deps.models, deps.limits));
        assertRequestWithinLimits(n, deps.limits);
        requireKnownModel(deps.models, n.model);
        return sendJson(res, 200, { input_tokens: n.traits.estimatedPromptTokens });
      }
      case "/v1/me/usage": {
        if (!readMethods.has(method)) return methodNotAllowed(res, "GET, HEAD");
        const p = await authenticate(req, deps);
        const since = new URL(req.url ?? "/", "http://localhost").searchParams.get("since_ms");
        if (since !== null && !/^\d{1,15}$/.test(since)) {
          throw new CoordinatorError(
            "invalid_request",
            "since_ms must be a Unix time in milliseconds (a non-negative integer)",
            { param: "since_ms" },
          );
        }
        return sendJson(res, 200, await deps.usage(p.accountId, since === null ? undefined : Number(since)));
      }
      case "/v1/me/providers": {
        if (!readMethods.has(method)) return methodNotAllowed(res, "GET, HEAD");
        const p = await authenticate(req, deps);
        return sendJson(res, 200, { object: "list", data: await deps.ownedProviders(p.accountId) });
      }
      default: {
        const owned = /^\/v1\/me\/providers\/([^/]+)$/.exec(path);
        if (owned) {
          if (method !== "DELETE") return methodNotAllowed(res, "DELETE");
          const p = await authenticate(req, deps);
          const serial = safeDecode(owned[1]!);
          // A serial no provider could register (Register enforces the same rule) belongs to nobody: 404 without
          // asking the database, which answered a NUL byte with a 500 (found by test/fuzz/consumer-routes.test.ts).
          if (!isPossibleSerial(serial) || !(await deps.forgetOwnedProvider(p.accountId, serial))) {
            throw new CoordinatorError(
              "not_found",
              `no provider with serial ${JSON.stringify(serial.slice(0, 64))} belongs to this account`,
            );
          }
          return sendJson(res, 200, { object: "provider", serial, deleted: true });
        }
        const m = /^\/v1\/models\/(.+)$/.exec(path);
        if (m && !readMethods.has(method)) return methodNotAllowed(res, "GET, HEAD");
        if (m) {
          await authenticate(req, deps);
          const id = safeDecode(m[1]!);
          const found = deps.models.list().find((x) => x.id === id);
          if (!found) throw modelNotFound(id);
          return sendJson(res, 200, modelObject(found));
        }
        throw new CoordinatorError("not_found", `no route for ${method} ${path}`, { wireCode: "unknown_url" });
      }
    }
  } catch (e) {
    const err = CoordinatorError.from(e);
    if (err.code === "internal") deps.log?.("route error", { path, error: String((e as Error)?.stack ?? e) });
    sendErrorFor(path)(res, err);
  }
}

function modelObject(m: ModelListEntry): Record<string, unknown> {
  return {
    id: m.id,
    object: "model",
    created: 0,
    owned_by: "coordinator",
    context_length: m.contextLength,
    input_modalities: m.isVision ? ["text", "image"] : ["text"],
    ...(m.inputMicroUsdPerMtok !== undefined
      ? {
          pricing: {
            input_micro_usd_per_mtok: m.inputMicroUsdPerMtok,
            output_micro_usd_per_mtok: m.outputMicroUsdPerMtok,
          },
        }
      : {}),
  };
}

/** 405 with `Allow`, in the route's dialect. */
function methodNotAllowed(res: ServerResponse, allow: string, dialect?: Dialect): void {
  const err = new CoordinatorError("invalid_request", `method not allowed; use ${allow}`, {
    wireCode: "method_not_allowed",
  });
  (dialect?.sendError ?? sendError)(res, err, { status: 405, headers: { allow } });
}

/** Whether a provider could have registered `serial` (the Register frame's rule, src/protocol/wire-bounds.ts). */
function isPossibleSerial(serial: string): boolean {
  try {
    checkSerial(serial);
    return true;
  } catch {
    return false;
  }
}

/** `decodeURIComponent` that answers a malformed escape (`%E0`) with the raw text instead of throwing. */
function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Answers a CORS preflight: any of our routes, with whatever headers the SDK in the page asks to send. */
function corsPreflight(req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(204, {
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-allow-headers":
      req.headers["access-control-request-headers"] ?? "authorization, content-type, x-api-key, anthropic-version",
    "access-control-max-age": "86400",
  });
  res.end();
}
