/**
 * One inference endpoint (Chat Completions, Completions, Responses or Messages), in pipeline order:
 * authenticate → read + repair + parse → preflight (the scheduler's own gates: fail fast when no provider can
 * structurally serve the request) → rate limits → ledger reservation → dispatch (deferred commit) → settle,
 * reconcile. Every pre-commit failure is a status code in the dialect's error shape.
 *
 * The reservation holds credit in memory only; its ledger row is written when the dispatcher sends the first
 * attempt to a provider (`onDispatched`). A request refused anywhere before that (4xx, 402, the limiter's or
 * the queue's 429, 503) writes no ledger row.
 *
 * The steps are called below in the same order; reading the body and the model's limits are read-request.ts, the
 * rate limiter's admission is rate-admission.ts, the money side (reserve, settle) is request-billing.ts and the
 * dispatcher's job is built in dispatch-job.ts.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AccountStore, Principal } from "../accounts/types.js";
import { includeUsageRequested } from "../dialects/index.js";
import type { Dialect } from "../dialects/shared/types.js";
import { CancelSource } from "../dispatch/cancel-signal.js";
import type { Dispatcher } from "../dispatch/dispatcher.js";
import type { DispatchResult } from "../dispatch/types.js";
import { CoordinatorError } from "../errors/coordinator-error.js";
import type { NormalizedRequest } from "../inference/types.js";
import type { ModelCatalog } from "../models/model-catalog.js";
import type { RateTicket } from "../ratelimit/types.js";
import type { RouteRequest } from "../scheduler/types.js";
import { count } from "../telemetry/metrics.js";
import { extractTraceContext, inSpan, SpanKind, startSpan, traceLogFields, type Span } from "../telemetry/tracing.js";
import { withLogFields } from "../util/log-context.js";
import type { Logger } from "../util/logger.js";
import { authenticate, type AuthDeps } from "./auth.js";
import type { BodyBudget } from "./body-budget.js";
import { dispatchJobFor } from "./dispatch-job.js";
import { admitRate } from "./rate-admission.js";
import { applyModelLimits, readRequest } from "./read-request.js";
import { reserveCredit, settleRequest, type BillingDeps } from "./request-billing.js";
import { noteRequest } from "./request-metrics.js";
import { newRequestId, requestIdHeaders } from "./request-id.js";
import { finishRequest, type RequestReport } from "./request-report.js";
import type { RequestLimits } from "./request-limits.js";
import { bufferedSink, streamingSink, type HttpSink } from "./response-sinks.js";
import { routeTarget, type Preflight, type Target } from "./route-target.js";

export type { Preflight };

export interface InferenceDeps extends AuthDeps, BillingDeps {
  accounts: AccountStore;
  dispatcher: Dispatcher;
  /**
   * The scheduler's decision for a request (shared gates with dispatch). `req.model` is the public name; the
   * answer names the build to use (an alias's desired build, or its previous one when only that has room) and
   * the model pools the dispatch must stay in.
   */
  preflight(req: RouteRequest): Preflight;
  models: ModelCatalog;
  /** Max request body size. */
  maxBodyBytes: number;
  /** Request-body bytes held at once across requests (shared by every route that reads a body). */
  bodyBudget: BodyBudget;
  /** Per-request bounds checked at parse time (JSON structure, messages, tools, images, caller ids). */
  limits: RequestLimits;
  /** Receives the per-request line ("request finished", info) and the refusal reasons. */
  logger?: Logger;
}

/**
 * Handles one inference request end to end; never throws. The request is one trace (its root span a child of
 * the caller's `traceparent`, if any) and one log scope (request and trace ids on every line), and ends with
 * one "request finished" line.
 */
export async function handleInference(
  deps: InferenceDeps,
  dialect: Dialect,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const requestId = newRequestId();
  const startedAtMs = deps.clock.nowMs();
  const route = (req.url ?? "").split("?")[0]!;
  const span = startSpan(
    `${req.method ?? "POST"} ${route}`,
    extractTraceContext(req.headers),
    {
      "http.request.method": req.method ?? "POST",
      "http.route": route,
      "coordinator.request_id": requestId,
      "coordinator.dialect": dialect.name,
    },
    SpanKind.SERVER,
  );
  const report: RequestReport = {};
  await withLogFields({ request_id: requestId, ...traceLogFields(span) }, async () => {
    await handleInferenceIn(deps, dialect, req, res, requestId, startedAtMs, span, report);
    finishRequest({
      ...(deps.logger ? { log: deps.logger } : {}),
      nowMs: deps.clock.nowMs(),
      dialect: dialect.name,
      route,
      status: res.statusCode,
      startedAtMs,
      span,
      report,
    });
  });
}

async function handleInferenceIn(
  deps: InferenceDeps,
  dialect: Dialect,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
  startedAtMs: number,
  span: Span,
  report: RequestReport,
): Promise<void> {
  const headers = requestIdHeaders(requestId);
  let ticket: RateTicket | undefined;
  let reserved = false;
  let principal: Principal | undefined;
  let limiterConsulted = false;
  try {
    principal = await inSpan("auth", span, () => authenticate(req, deps));
    const { body, constraints, normalized } = await readRequest(deps, dialect, req, res);
    noteRequest(res, { dialect: dialect.name, model: normalized.model });
    report.model = normalized.model;
    span.setAttributes({
      "gen_ai.operation.name": dialect.name === "completions" ? "text_completion" : "chat",
      "gen_ai.request.model": normalized.model,
      "gen_ai.request.max_tokens": normalized.traits.maxTokens,
    });
    applyModelLimits(deps, normalized);
    const target = await inSpan(
      "route",
      span,
      () => routeTarget(deps.preflight, requestId, normalized, principal!, constraints),
      { "coordinator.routing.phase": "preflight" },
    );
    if (target.build !== normalized.model) span.setAttribute("coordinator.model.build", target.build);
    // Who pays: nobody when the caller's own machine serves it (X-Route: self, or prefer with one free).
    if (constraints.mode !== "public") headers["x-route"] = target.selfServed ? "self" : "public";

    const rate = await admitRate(deps, principal, normalized, target, span);
    limiterConsulted = true;
    Object.assign(headers, rate.headers);
    if (!rate.ok) throw rate.error;
    ticket = rate.ticket;

    await inSpan("reserve", span, () => reserveCredit(deps, requestId, principal!, normalized, target));
    reserved = true;

    const { result, sink } = await dispatchAndRespond(
      deps,
      dialect,
      requestId,
      normalized,
      target,
      body,
      req,
      res,
      headers,
      span,
      report,
    );
    report.result = result;
    if (result.kind !== "completed")
      noteRequest(res, { outcome: result.kind === "failed" ? "in_band_error" : "cancelled" });
    try {
      const t = ticket;
      await inSpan(
        "settle",
        span,
        () => settleRequest(deps, requestId, target.build, normalized, result, t, startedAtMs),
        { "coordinator.dispatch.outcome": result.kind },
      );
    } finally {
      sink.end();
    }
  } catch (e) {
    const err = CoordinatorError.from(e);
    report.error = err;
    if (err.code === "internal")
      deps.log?.("inference request failed", { request_id: requestId, error: String((e as Error)?.stack ?? e) });
    if (reserved) await deps.ledger.release(requestId, err.code).catch(() => undefined);
    if (ticket)
      deps.limiter.reconcile(ticket, { inputTokens: 0, outputTokens: 0, representative: false }, deps.clock.nowMs());
    count("http.inference_errors", { dialect: dialect.name, code: err.code });
    // Refused before the limiter (invalid body, no capable Mac): the caller still learns where its limits stand.
    if (principal && !limiterConsulted) Object.assign(headers, deps.limiter.headers(principal, deps.clock.nowMs()));
    dialect.sendError(res, err, { headers });
  }
}

async function dispatchAndRespond(
  deps: InferenceDeps,
  dialect: Dialect,
  requestId: string,
  n: NormalizedRequest,
  target: Target,
  request: unknown,
  req: IncomingMessage,
  res: ServerResponse,
  headers: Record<string, string>,
  span: Span,
  report: RequestReport,
): Promise<{ result: DispatchResult; sink: HttpSink }> {
  const meta = {
    requestId,
    model: n.model,
    createdS: Math.floor(deps.clock.nowMs() / 1000),
    includeUsage: includeUsageRequested(request),
    promptTokens: n.traits.estimatedPromptTokens,
    request,
  };
  const sink = n.traits.stream ? streamingSink(res, dialect, meta, headers) : bufferedSink(res, dialect, meta, headers);
  const cancel = new CancelSource();
  const onClose = () => {
    if (!res.writableFinished) cancel.abort();
  };
  res.on("close", onClose);
  req.on("aborted", onClose);
  // A caller that hung up while its rate and credit were being admitted closed before these listeners existed:
  // without this it would run to max_tokens and be billed for it.
  // (The request stream itself is destroyed once its body has been read: only the socket tells.)
  if (res.destroyed || req.socket?.destroyed === true) cancel.abort();
  try {
    const job = dispatchJobFor(requestId, n, target, {
      onDispatched: () => deps.ledger.recordDispatch(requestId),
      trace: span,
      onFirstToken: () => {
        report.firstTokenAtMs = deps.clock.nowMs();
        span.addEvent("first_token");
      },
    });
    const result = await deps.dispatcher.dispatch(job, sink, cancel);
    if (result.kind === "failed" && !result.committed) throw result.error;
    if (result.kind === "cancelled" && !result.committed) {
      if (!res.writableEnded) res.destroy();
    }
    return { result, sink };
  } finally {
    res.off("close", onClose);
  }
}
