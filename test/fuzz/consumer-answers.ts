/**
 * What a consumer route may answer a fuzz case, decided per route and checked on the wire: the legitimate
 * statuses (no 5xx but the documented 503s), each dialect's error shape, and a clean 200 (no in-band error in
 * a stream). Every check throws an Error describing the case, which fast-check reports with the seed.
 */
import type { FuzzResponse } from "./fuzz-target.js";

export type Dialect = "openai" | "anthropic";

/** How the case authenticates. `ok` uses the fuzz account's key; the rest must be refused with 401. */
export type AuthCase = "ok" | "ok-x-api-key" | "missing" | "wrong-key" | "basic" | "bearer-only" | "two-tokens";

/** The request headers of an auth case. */
export function authHeaders(auth: AuthCase, apiKey: string, wrongKey: string): Record<string, string> {
  switch (auth) {
    case "ok":
      return { authorization: `Bearer ${apiKey}` };
    case "ok-x-api-key":
      return { "x-api-key": apiKey, "anthropic-version": "2023-06-01" };
    case "missing":
      return {};
    case "wrong-key":
      return { authorization: `Bearer ${wrongKey}` };
    case "basic":
      return { authorization: `Basic ${Buffer.from(`${apiKey}:`).toString("base64")}` };
    case "bearer-only":
      return { authorization: "Bearer" };
    case "two-tokens":
      return { authorization: `Bearer ${apiKey} ${apiKey}` };
  }
}

export function authOk(auth: AuthCase): boolean {
  return auth === "ok" || auth === "ok-x-api-key";
}

/** Throws with the case's description unless `cond` holds. */
export function expect(cond: unknown, what: string, res: FuzzResponse): asserts cond {
  if (!cond)
    throw new Error(
      `${what}; got HTTP ${res.status} ${String(res.headers["content-type"] ?? "")}: ${res.body.slice(0, 600)}`,
    );
}

function parse(res: FuzzResponse): unknown {
  try {
    return JSON.parse(res.body);
  } catch {
    throw new Error(`HTTP ${res.status} body is not JSON: ${res.body.slice(0, 300)}`);
  }
}

/** The error body of the route's dialect; returns its machine-readable code (OpenAI) or type (Anthropic). */
export function checkErrorShape(dialect: Dialect, res: FuzzResponse): { code: string; type: string; message: string } {
  const b = parse(res) as {
    type?: unknown;
    error?: { type?: unknown; message?: unknown; code?: unknown; param?: unknown };
  } | null;
  const e = b?.error;
  const type = e?.type;
  const message = e?.message;
  if (dialect === "anthropic") {
    expect(
      b?.type === "error" && typeof type === "string" && typeof message === "string",
      "an Anthropic error body {type:'error',error:{type,message}}",
      res,
    );
    return { code: type, type, message };
  }
  expect(
    typeof message === "string" && typeof type === "string" && e !== undefined && "code" in e && "param" in e,
    "an OpenAI error body {error:{message,type,code,param}}",
    res,
  );
  return { code: String(e.code), type, message };
}

/** A 200: a JSON body, or an SSE stream with no error event in it. */
export function checkSuccess(res: FuzzResponse): void {
  const ct = String(res.headers["content-type"] ?? "");
  if (!ct.startsWith("text/event-stream")) {
    parse(res);
    return;
  }
  for (const line of res.body.split("\n")) {
    if (line.startsWith("event: error")) expect(false, "no in-band error event in a stream served by honest Macs", res);
    if (!line.startsWith("data:")) continue;
    const payload = line.slice(5).trim();
    if (payload === "[DONE]") continue;
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(payload) as Record<string, unknown>;
    } catch {
      throw new Error(`an SSE data line is not JSON: ${payload.slice(0, 200)}`);
    }
    expect(
      e.error === undefined && e.type !== "error" && e.type !== "response.failed",
      "no in-band error event in a stream served by honest Macs",
      res,
    );
  }
}

/** The documented 503s: no connected Mac can serve the request shape, or the server holds too many bodies. */
function isDocumented503(dialect: Dialect, e: { code: string; message: string }, res: FuzzResponse): boolean {
  if (dialect === "openai")
    return (
      e.code === "model_unavailable" || (e.code === "server_overloaded" && res.headers["retry-after"] !== undefined)
    );
  // Anthropic bodies carry no code: overloaded_error, and not the authentication-outage refusal (the database is up).
  return e.code === "overloaded_error" && !/authentication is temporarily unavailable|internal/i.test(e.message);
}

/**
 * Checks an inference route's answer (chat, completions, responses, messages; `dispatches: false` for
 * count_tokens, which never reaches a Mac, a rate limit or the ledger).
 *
 * - bad credentials: 401 (429 with Retry-After once failed attempts are throttled);
 * - otherwise: 200, 400, 404 `model_not_found`, and for routes that dispatch 402 (the reservation), 429 (rate
 *   limits, every Mac busy; with Retry-After) and the documented 503s; 415 only for a body not sent as JSON.
 */
export function checkInferenceAnswer(
  o: { dialect: Dialect; dispatches: boolean; auth: AuthCase; jsonContentType: boolean },
  res: FuzzResponse,
): number {
  const s = res.status;
  if (!authOk(o.auth)) {
    expect(
      s === 401 || (s === 429 && res.headers["retry-after"] !== undefined),
      "bad credentials are refused with 401",
      res,
    );
    checkErrorShape(o.dialect, res);
    return s;
  }
  if (s === 200) {
    checkSuccess(res);
    return s;
  }
  const allowed = new Set([400, 404, ...(o.dispatches ? [402, 429, 503] : []), ...(o.jsonContentType ? [] : [415])]);
  expect(allowed.has(s), `one of ${[200, ...allowed].join(", ")}`, res);
  const e = checkErrorShape(o.dialect, res);
  if (s === 404)
    expect(e.code === "model_not_found" || e.code === "not_found_error", "a 404 names the unknown model", res);
  if (s === 429) expect(res.headers["retry-after"] !== undefined, "a 429 carries Retry-After", res);
  if (s === 503)
    expect(
      isDocumented503(o.dialect, e, res),
      "a 503 is a documented one (model_unavailable, or server_overloaded with Retry-After)",
      res,
    );
  return s;
}
