/**
 * The closed set of error codes the coordinator produces. Each maps to one HTTP status and one OpenAI error
 * `type` in {@link errorTable}; every edge (OpenAI REST, Anthropic REST, Connect admin) maps from this one type.
 */
export type ErrorCode =
  | "invalid_request" // 400: malformed JSON, missing fields, n > 1, ...
  | "unauthenticated" // 401: missing or unknown key
  | "permission_denied" // 403: e.g. a non-admin calling admin routes
  | "not_found" // 404: unknown route
  | "model_not_found" // 404: unknown model
  | "already_exists" // 409: a duplicate of something that must be unique (an API key value, a credit reference)
  | "payload_too_large" // 413
  | "insufficient_quota" // 402: balance or key spend cap cannot cover the reservation
  | "rate_limited" // 429: per-account/key token buckets
  | "capacity_exhausted" // 429: every capable provider busy and the queue is full or timed out
  | "model_unavailable" // 503: no connected provider can structurally serve the request
  | "provider_failed" // 502: dispatch exhausted on genuine provider faults
  | "timeout" // 504
  | "canceled" // 499: the client went away
  | "unavailable" // 503: the coordinator itself is shutting down or a dependency is down
  | "internal"; // 500

/** Status, OpenAI `type`, and Anthropic `type` for each code. */
export const errorTable: Readonly<Record<ErrorCode, { status: number; openaiType: string; anthropicType: string }>> = {
  invalid_request: { status: 400, openaiType: "invalid_request_error", anthropicType: "invalid_request_error" },
  unauthenticated: { status: 401, openaiType: "authentication_error", anthropicType: "authentication_error" },
  permission_denied: { status: 403, openaiType: "permission_error", anthropicType: "permission_error" },
  not_found: { status: 404, openaiType: "invalid_request_error", anthropicType: "not_found_error" },
  model_not_found: { status: 404, openaiType: "invalid_request_error", anthropicType: "not_found_error" },
  already_exists: { status: 409, openaiType: "invalid_request_error", anthropicType: "invalid_request_error" },
  payload_too_large: { status: 413, openaiType: "invalid_request_error", anthropicType: "request_too_large" },
  insufficient_quota: { status: 402, openaiType: "insufficient_quota", anthropicType: "billing_error" },
  rate_limited: { status: 429, openaiType: "rate_limit_error", anthropicType: "rate_limit_error" },
  capacity_exhausted: { status: 429, openaiType: "rate_limit_error", anthropicType: "rate_limit_error" },
  model_unavailable: { status: 503, openaiType: "service_unavailable", anthropicType: "overloaded_error" },
  provider_failed: { status: 502, openaiType: "api_error", anthropicType: "api_error" },
  timeout: { status: 504, openaiType: "timeout", anthropicType: "timeout_error" },
  canceled: { status: 499, openaiType: "canceled", anthropicType: "api_error" },
  unavailable: { status: 503, openaiType: "service_unavailable", anthropicType: "overloaded_error" },
  internal: { status: 500, openaiType: "api_error", anthropicType: "api_error" },
};

/** Options carried by a {@link CoordinatorError} beyond its code and message. */
export interface CoordinatorErrorOptions {
  /** The offending request field, e.g. "messages". */
  param?: string;
  /** A more specific machine-readable code for the body (e.g. "rate_limit_exceeded", "pool_exhausted"). */
  wireCode?: string;
  /** Seconds a client should wait; sent as `Retry-After`. */
  retryAfterS?: number;
  /** Extra response headers (e.g. x-ratelimit-*). */
  headers?: Record<string, string>;
  /** The underlying cause; logged, never sent to clients. */
  cause?: unknown;
}

/** The coordinator's one error type. */
export class CoordinatorError extends Error {
  override readonly name = "CoordinatorError";
  readonly code: ErrorCode;
  readonly param: string | undefined;
  readonly wireCode: string | undefined;
  readonly retryAfterS: number | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, message: string, options: CoordinatorErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.param = options.param;
    this.wireCode = options.wireCode;
    this.retryAfterS = options.retryAfterS;
    this.headers = options.headers;
  }

  get status(): number {
    return errorTable[this.code].status;
  }

  /** Wraps anything thrown into a CoordinatorError, keeping an existing one as is. */
  static from(reason: unknown, code: ErrorCode = "internal"): CoordinatorError {
    if (reason instanceof CoordinatorError) return reason;
    const message = reason instanceof Error ? reason.message : String(reason);
    return new CoordinatorError(code, code === "internal" ? "internal error" : message, { cause: reason });
  }
}

/** The OpenAI error body: `{"error":{"message","type","code","param"}}`. */
export function toOpenAIError(e: CoordinatorError): {
  error: { message: string; type: string; code: string; param: string | null };
} {
  return {
    error: {
      message: e.message,
      type: errorTable[e.code].openaiType,
      code: e.wireCode ?? e.code,
      param: e.param ?? null,
    },
  };
}

/** The Anthropic error body: `{"type":"error","error":{"type","message"}}`. */
export function toAnthropicError(e: CoordinatorError): { type: "error"; error: { type: string; message: string } } {
  return { type: "error", error: { type: errorTable[e.code].anthropicType, message: e.message } };
}

/** Response headers for an error: Retry-After plus any carried headers. */
export function errorHeaders(e: CoordinatorError): Record<string, string> {
  const h: Record<string, string> = { ...(e.headers ?? {}) };
  if (e.retryAfterS !== undefined) h["retry-after"] = String(Math.max(1, Math.ceil(e.retryAfterS)));
  return h;
}
