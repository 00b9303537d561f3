/**
 * Failure classification for the load-test client. Every failed request gets exactly one class, decided by the
 * first matching rule in {@link classificationRules} (order matters: specific rules before generic ones). The
 * classes separate the pre-router guards (billing, account rate limits) from genuine fleet/router shedding
 * (capacity, pool, dispatch), which is the distinction the production load test needed to make.
 *
 * Rules, in order:
 * 1. `client_timeout`     the client gave up (`--timeout`) before the body ended.
 * 2. `network`            no usable HTTP exchange: connection refused/reset, or the stream broke off.
 * 3. `in_band_error`      a `data: {"error":...}` event after a 200 (the failure arrived mid-stream).
 * 4. `pool_exhausted_429` 429 with code `pool_exhausted`.
 * 5. `billing_503`        503 with code `service_unavailable`, or a 503 whose message mentions balance, ledger,
 *                         billing or debit (the pre-flight reservation failed, not the fleet).
 * 6. `ratelimit_429`      429 whose message names an account limit: requests / input_tokens / output_tokens / tokens
 *                         rate limit (per-account token buckets, charged before routing).
 * 7. `capacity_429`       429 with a capacity code (`capacity_exhausted`, `no_capacity`, `queue_full`,
 *                         `queue_timeout`) or a message mentioning capacity or the queue.
 * 8. `ratelimit_429`      any other 429 whose code is `rate_limit_exceeded` / `rate_limited`.
 * 9. `dispatch_503`       503 `model_unavailable`, 502 `provider_error`, and every other 5xx.
 * 10. `http_4xx`          anything else (other 4xx, an unknown 429, or an unexpected status).
 */

/** The closed set of failure classes. */
export type ErrorClass =
  | "billing_503"
  | "ratelimit_429"
  | "capacity_429"
  | "pool_exhausted_429"
  | "dispatch_503"
  | "in_band_error"
  | "client_timeout"
  | "http_4xx"
  | "network";

/** Every class, in report order. */
export const errorClasses: readonly ErrorClass[] = [
  "billing_503",
  "ratelimit_429",
  "capacity_429",
  "pool_exhausted_429",
  "dispatch_503",
  "in_band_error",
  "client_timeout",
  "http_4xx",
  "network",
];

/** What the client observed about a failure. `code`/`message` come from an OpenAI error body when present. */
export type Failure =
  | { kind: "http"; status: number; code?: string | null; type?: string | null; message?: string | null }
  | { kind: "in_band"; code?: string | null; message?: string | null }
  | { kind: "timeout" }
  | { kind: "network"; message?: string | null };

/** One classification rule: the first rule whose `matches` returns true decides the class. */
export interface ClassificationRule {
  errorClass: ErrorClass;
  /** One line for the docs and the report. */
  description: string;
  matches(f: Failure): boolean;
}

const capacityCodes = new Set(["capacity_exhausted", "no_capacity", "queue_full", "queue_timeout"]);
const rateLimitCodes = new Set(["rate_limit_exceeded", "rate_limited"]);
const billingMessage = /\b(balance|ledger|billing|debit)\b/i;
const accountLimitMessage = /\b(requests|input_tokens|output_tokens|tokens)\b[\w\s-]*rate limit/i;
const capacityMessage = /capacity|queue/i;

const isHttp = (f: Failure, status?: number): f is Extract<Failure, { kind: "http" }> =>
  f.kind === "http" && (status === undefined || f.status === status);

/** The rules, in evaluation order. Exported so the report and tests can show/verify them. */
export const classificationRules: readonly ClassificationRule[] = [
  { errorClass: "client_timeout", description: "the client timeout fired", matches: (f) => f.kind === "timeout" },
  {
    errorClass: "network",
    description: "connection failed or the stream broke off",
    matches: (f) => f.kind === "network",
  },
  { errorClass: "in_band_error", description: 'data: {"error":...} after a 200', matches: (f) => f.kind === "in_band" },
  {
    errorClass: "pool_exhausted_429",
    description: "429 code pool_exhausted",
    matches: (f) => isHttp(f, 429) && f.code === "pool_exhausted",
  },
  {
    errorClass: "billing_503",
    description: "503 service_unavailable, or a message about balance/ledger/billing",
    matches: (f) => isHttp(f, 503) && (f.code === "service_unavailable" || billingMessage.test(f.message ?? "")),
  },
  {
    errorClass: "ratelimit_429",
    description: "429 requests/input_tokens/output_tokens rate limit (account limits)",
    matches: (f) => isHttp(f, 429) && accountLimitMessage.test(f.message ?? ""),
  },
  {
    errorClass: "capacity_429",
    description: "429 capacity exhausted, queue full or queue timeout",
    matches: (f) =>
      isHttp(f, 429) && ((f.code != null && capacityCodes.has(f.code)) || capacityMessage.test(f.message ?? "")),
  },
  {
    errorClass: "ratelimit_429",
    description: "other 429 rate_limit_exceeded",
    matches: (f) => isHttp(f, 429) && f.code != null && rateLimitCodes.has(f.code),
  },
  {
    errorClass: "dispatch_503",
    description: "503 model_unavailable, 502 provider_error, any other 5xx",
    matches: (f) => f.kind === "http" && f.status >= 500,
  },
];

/** Classifies one failure by the first matching rule; falls back to `http_4xx`. */
export function classifyFailure(f: Failure): ErrorClass {
  for (const rule of classificationRules) if (rule.matches(f)) return rule.errorClass;
  return "http_4xx";
}

/**
 * Pulls `code`, `type` and `message` out of an OpenAI-style error body (`{"error":{...}}`), tolerating plain
 * strings and non-JSON bodies (the raw text, trimmed to 300 characters, becomes the message).
 */
export function parseErrorBody(text: string): { code: string | null; type: string | null; message: string | null } {
  try {
    const body = JSON.parse(text) as unknown;
    const err = (body as { error?: unknown })?.error ?? body;
    if (typeof err === "string") return { code: null, type: null, message: err };
    if (err && typeof err === "object") {
      const e = err as { code?: unknown; type?: unknown; message?: unknown };
      return {
        code: e.code == null ? null : String(e.code),
        type: typeof e.type === "string" ? e.type : null,
        message: typeof e.message === "string" ? e.message : null,
      };
    }
  } catch {
    // Not JSON: a proxy's HTML error page or plain text. Keep a bounded excerpt for the report.
  }
  const trimmed = text.trim();
  return { code: null, type: null, message: trimmed === "" ? null : trimmed.slice(0, 300) };
}
