/**
 * Traces through the OpenTelemetry API only: one trace per consumer request, with child spans for each step
 * (see the README's Observability section for the list). Without an installed SDK the API's tracer is a no-op
 * and every helper here costs a few object allocations; the caller's `traceparent` is still carried to the
 * provider (a non-recording span keeps the caller's ids).
 *
 * Contexts are passed explicitly (`parent` arguments), never read from the active context: the dispatcher's
 * events arrive on the provider's gRPC stream, whose async context is not the request's.
 *
 * Attribute names follow the OpenTelemetry GenAI semantic conventions where they fit
 * (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/); the coordinator's own ones are under
 * `coordinator.`.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  isSpanContextValid,
  trace,
  type Attributes,
  type Context,
  type Span,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";

export type { Context, Span } from "@opentelemetry/api";
export { SpanKind } from "@opentelemetry/api";

/** W3C Trace Context (https://www.w3.org/TR/trace-context/), used on the way in and to providers. */
const w3c = new W3CTraceContextPropagator();

/** The tracer, looked up per span so a provider registered later (tests, the SDK) is always the one used. */
function tracer() {
  return trace.getTracer("coordinator");
}

/** The caller's trace context from HTTP headers (`traceparent`, `tracestate`); ROOT_CONTEXT when absent or malformed. */
export function extractTraceContext(headers: Readonly<Record<string, string | string[] | undefined>>): Context {
  return w3c.extract(ROOT_CONTEXT, headers, {
    keys: (h) => Object.keys(h),
    get: (h, k) => h[k.toLowerCase()],
  });
}

/** The W3C headers (`traceparent`, maybe `tracestate`) of `span`; empty when the span has no valid context. */
export function traceHeaders(span: Span): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isSpanContextValid(span.spanContext())) return out;
  w3c.inject(trace.setSpan(ROOT_CONTEXT, span), out, { set: (c, k, v) => void (c[k] = v) });
  return out;
}

/** Starts a span under `parent` (a context or a span). End it with {@link endSpan}. */
export function startSpan(
  name: string,
  parent: Context | Span,
  attributes: Attributes = {},
  kind: SpanKind = SpanKind.INTERNAL,
): Span {
  const ctx = "spanContext" in parent ? trace.setSpan(ROOT_CONTEXT, parent) : parent;
  return tracer().startSpan(name, { kind, attributes }, ctx);
}

/** Ends `span`, with status ERROR (and the exception recorded) when `error` is given. */
export function endSpan(span: Span, error?: unknown, attributes?: Attributes): void {
  if (attributes) span.setAttributes(attributes);
  if (error !== undefined) failSpan(span, error);
  span.end();
}

/** Marks `span` as failed: status ERROR with the error's message, `error.type` and an exception event. */
export function failSpan(span: Span, error: unknown): void {
  const e = error instanceof Error ? error : new Error(String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
  span.setAttribute(
    "error.type",
    (e as { code?: unknown }).code !== undefined ? String((e as { code?: unknown }).code) : e.name,
  );
  span.recordException(e);
}

/** Runs `fn` in a child span of `parent`, ending it (ERROR on a throw) when `fn` settles. */
export async function inSpan<T>(
  name: string,
  parent: Span,
  fn: (span: Span) => Promise<T> | T,
  attributes: Attributes = {},
): Promise<T> {
  const span = startSpan(name, parent, attributes);
  try {
    const r = await fn(span);
    span.end();
    return r;
  } catch (e) {
    endSpan(span, e);
    throw e;
  }
}

/**
 * Log fields tying a line to a span: `trace_id` / `span_id` (W3C hex) and Datadog's `dd.trace_id` /
 * `dd.span_id` (the low 64 bits in decimal, which is what Datadog correlates on). Empty for an invalid context.
 */
export function traceLogFields(span: Span): Record<string, string> {
  const sc = span.spanContext();
  if (!isSpanContextValid(sc)) return {};
  return {
    trace_id: sc.traceId,
    span_id: sc.spanId,
    "dd.trace_id": BigInt(`0x${sc.traceId.slice(16)}`).toString(),
    "dd.span_id": BigInt(`0x${sc.spanId}`).toString(),
  };
}
