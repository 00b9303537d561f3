/**
 * The trace of one request's dispatch: an instant "route" span per routing decision and one client span per
 * provider attempt, all children of the request's span. Kept apart from the run so that the run reads as
 * decisions, while the span bookkeeping (one open span per provider, each ended exactly once, a queued
 * request's re-picks traced once) lives in one place. Without a request span every method is a no-op.
 */
import type { CoordinatorError } from "../errors/coordinator-error.js";
import type { ProviderId } from "../registry/types.js";
import type { PickResult } from "../scheduler/types.js";
import { endSpan, SpanKind, startSpan, traceHeaders, type Span } from "../telemetry/tracing.js";

/** Why an attempt was dispatched (its span's `coordinator.dispatch.reason`). */
export type DispatchReason = "first_pick" | "failover" | "slow_first_token";

/** Which scheduling step a routing decision belongs to (`coordinator.routing.phase`). */
export type RoutingPhase = "dispatch" | "failover" | "backup";

type SpanAttributes = Record<string, string | number | boolean | string[]>;

export class AttemptTracer {
  readonly #parent: Span | undefined;
  readonly #model: string;
  /** Each attempt's open span (one attempt per provider). */
  readonly #spans = new Map<ProviderId, Span>();
  /** A "queue" decision has been traced (a queued request is re-picked on every capacity change: trace it once). */
  #queueTraced = false;

  constructor(parent: Span | undefined, model: string) {
    this.#parent = parent;
    this.#model = model;
  }

  /** One routing decision as an instant child span of the request (a queued request's re-picks: the first only). */
  decision(d: PickResult, phase: RoutingPhase): void {
    if (!this.#parent || (d.kind === "queue" && this.#queueTraced)) return;
    if (d.kind === "queue") this.#queueTraced = true;
    const span = startSpan("route", this.#parent, {
      "coordinator.routing.phase": phase,
      "coordinator.routing.decision": d.kind,
      "coordinator.routing.reason": d.kind === "reject" ? d.code : d.reason,
      ...(d.kind === "picked" ? { "coordinator.provider.id": d.providerId, "coordinator.routing.cold": d.cold } : {}),
    });
    span.end();
  }

  /**
   * Opens an attempt's span (`attempt`: 1-based). Returns the trace headers the provider should continue, or
   * undefined when the request is not traced.
   */
  startAttempt(
    providerId: ProviderId,
    attempt: number,
    backup: boolean,
    reason: DispatchReason,
  ): Record<string, string> | undefined {
    if (!this.#parent) return undefined;
    const span = startSpan(
      `chat ${this.#model}`,
      this.#parent,
      {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": this.#model,
        "coordinator.provider.id": providerId,
        "coordinator.attempt": attempt,
        "coordinator.attempt.backup": backup,
        "coordinator.dispatch.reason": reason,
      },
      SpanKind.CLIENT,
    );
    this.#spans.set(providerId, span);
    return traceHeaders(span);
  }

  /** Marks a moment in an attempt's open span (e.g. its first token). */
  event(providerId: ProviderId, name: string): void {
    this.#spans.get(providerId)?.addEvent(name);
  }

  /** Ends an attempt's span once (`outcome`: success, failed, cancelled; `reason`: the fault or cancel reason). */
  endAttempt(
    providerId: ProviderId,
    outcome: string,
    reason: string | undefined,
    error?: CoordinatorError,
    attributes: SpanAttributes = {},
  ): void {
    const span = this.#spans.get(providerId);
    if (!span) return;
    this.#spans.delete(providerId);
    endSpan(span, error, {
      "coordinator.attempt.outcome": outcome,
      ...(reason !== undefined ? { "coordinator.attempt.reason": reason } : {}),
      ...attributes,
    });
  }
}
