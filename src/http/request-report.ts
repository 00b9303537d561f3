/**
 * The end of one consumer request: the request span's closing attributes and status, and the one
 * "request finished" log line (info) an operator searches by route, model, provider, status and outcome.
 */
import type { DispatchResult } from "../dispatch/types.js";
import type { CoordinatorError } from "../errors/coordinator-error.js";
import { failSpan, type Span } from "../telemetry/tracing.js";
import type { Logger } from "../util/logger.js";

/** What the request span and its log line report, filled in as the request goes. */
export interface RequestReport {
  model?: string;
  result?: DispatchResult;
  /** Why the request was refused or failed (any step, before or after dispatch). */
  error?: CoordinatorError;
  /** When the leading provider's first content arrived (the last leader's, after a buffered failover). */
  firstTokenAtMs?: number;
}

export interface FinishedRequest {
  log?: Logger;
  nowMs: number;
  dialect: string;
  route: string;
  /** The HTTP status sent (200 for a stream that later failed in-band). */
  status: number;
  startedAtMs: number;
  span: Span;
  report: RequestReport;
}

/**
 * Outcomes: `completed`; `failed` (after commit: an in-band error); `cancelled` (the consumer hung up);
 * `refused` (answered with an error status before any provider produced content, including failover
 * exhausted and queue full).
 */
export function finishRequest(f: FinishedRequest): void {
  const { report: r, span } = f;
  const res = r.result;
  const outcome = res && !(res.kind === "failed" && !res.committed) ? res.kind : "refused";
  const usage = res?.kind === "completed" ? res.usage : res?.partial;
  const providerId = res?.kind === "completed" ? res.providerId : res?.served?.providerId;
  const error = r.error ?? (res?.kind === "failed" ? res.error : undefined);
  const durationMs = f.nowMs - f.startedAtMs;

  span.setAttribute("http.response.status_code", f.status);
  span.setAttribute("coordinator.outcome", outcome);
  if (res) span.setAttribute("coordinator.dispatch.attempts", res.attempts);
  if (providerId) span.setAttribute("coordinator.provider.id", providerId);
  if (usage)
    span.setAttributes({
      "gen_ai.usage.input_tokens": usage.promptTokens,
      "gen_ai.usage.output_tokens": usage.completionTokens,
    });
  if (res?.kind === "completed") span.setAttribute("gen_ai.response.finish_reasons", [res.finishReason]);
  // A server span is an error for 5xx and for failures after commit, not for a caller's 4xx (semantic conventions).
  if (error && (f.status >= 500 || outcome === "failed")) failSpan(span, error);
  else if (error) span.setAttribute("error.type", error.code);
  span.end();

  f.log?.info("request finished", {
    route: f.route,
    dialect: f.dialect,
    ...(r.model !== undefined ? { model: r.model } : {}),
    ...(providerId ? { provider_id: providerId } : {}),
    status: f.status,
    outcome,
    ...(usage ? { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens } : {}),
    ...(r.firstTokenAtMs !== undefined ? { ttft_ms: r.firstTokenAtMs - f.startedAtMs } : {}),
    duration_ms: durationMs,
    ...(res ? { attempts: res.attempts } : {}),
    ...(res?.kind === "completed" ? { finish_reason: res.finishReason } : {}),
    // The refusal's reason, as the caller saw it (rate limit, quota, no capacity, failover exhausted, ...).
    ...(error ? { error_code: error.code, reason: error.wireCode ?? error.code, error_message: error.message } : {}),
  });
}
