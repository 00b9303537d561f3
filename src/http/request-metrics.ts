/**
 * Per-request metrics at the HTTP edge: `http.latency_ms{route,status}` and
 * `requests{route,dialect,model,status,outcome}`, recorded once when the response finishes. Routes are templated
 * (`/v1/models/{id}`), so a path a client invents cannot make a new series; the model is only noted by the
 * inference route after it was checked against the directory.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { count, observe } from "../telemetry/metrics.js";

/** How a request ended, as the `outcome` tag of `requests` says it. */
export const requestOutcomes = ["success", "in_band_error", "client_error", "shed", "error", "cancelled"] as const;
export type RequestOutcome = (typeof requestOutcomes)[number];

interface Note {
  dialect?: string;
  model?: string;
  outcome?: RequestOutcome;
}
const notes = new WeakMap<ServerResponse, Note>();

/** Adds what only the handler knows (dialect, a validated model, an outcome the status cannot tell). */
export function noteRequest(res: ServerResponse, note: Note): void {
  notes.set(res, { ...notes.get(res), ...note });
}

const fixedRoutes = new Set([
  "/v1/chat/completions",
  "/v1/completions",
  "/v1/responses",
  "/v1/messages",
  "/v1/messages/count_tokens",
  "/v1/models",
  "/v1/models/capacity",
  "/v1/me/usage",
  "/v1/me/providers",
  "/health",
  "/healthz",
  "/livez",
  "/readyz",
  "/metrics",
]);

/** The bounded route template of a request target. */
export function routeTemplate(url: string | undefined): string {
  let path: string;
  try {
    path = new URL(url ?? "/", "http://localhost").pathname.replace(/\/+$/, "") || "/";
  } catch {
    return "other";
  }
  if (fixedRoutes.has(path)) return path;
  if (path.startsWith("/v1/me/providers/")) return "/v1/me/providers/{serial}";
  if (path.startsWith("/v1/models/")) return "/v1/models/{id}";
  if (/^\/[a-z]+(\.[a-z0-9]+)+\.[A-Za-z]+\/[A-Za-z]+$/.test(path)) return "connect"; // admin RPCs: /<pkg>.<Service>/<Method>
  return "other";
}

/** The outcome a status implies when the handler noted none. 429 is load shedding (queue full, rate limited). */
export function outcomeOfStatus(status: number): RequestOutcome {
  if (status < 400) return "success";
  if (status === 429) return "shed";
  if (status === 499) return "cancelled";
  return status < 500 ? "client_error" : "error";
}

/** Records both metrics for a finished response. */
export function recordHttpFinish(req: IncomingMessage, res: ServerResponse, durationMs: number): void {
  const route = routeTemplate(req.url);
  const status = res.statusCode;
  const n = notes.get(res);
  observe("http.latency_ms", durationMs, { route, status });
  count("requests", {
    route,
    dialect: n?.dialect ?? "none",
    model: n?.model ?? "none",
    status,
    outcome: n?.outcome ?? outcomeOfStatus(status),
  });
}
