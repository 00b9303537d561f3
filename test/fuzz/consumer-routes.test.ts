/**
 * Fuzz of every consumer route against a real `coordinator serve` (issue 13, item 8): generated valid bodies
 * of each dialect, mutated in the tree and on the wire, sent with right and wrong content types and
 * credentials. Each answer must be one of the route's legitimate statuses in the route's error shape (see
 * consumer-answers.ts); afterwards the coordinator still answers /health, holds no request in flight, its
 * resident set grew by less than a bound, and `ledger verify` is clean.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  authHeaders,
  authOk,
  checkErrorShape,
  checkInferenceAnswer,
  expect,
  type AuthCase,
  type Dialect,
} from "./consumer-answers.js";
import { chatBody, completionsBody, countTokensBody, messagesBody, responsesBody } from "./consumer-bodies.js";
import { allOf, batchOf, fuzzParameters, report, runsFor } from "./fuzz-options.js";
import {
  checkRssGrowth,
  loggedErrors,
  startFuzzTarget,
  stopAndVerifyLedger,
  STRANGER_ADDRESS,
  type FuzzResponse,
  type FuzzTarget,
} from "./fuzz-target.js";
import { bodyCase, contentType, hostileString, isJsonContentType, preview } from "./json-mutation.js";
import { renderBody, type JsonTree } from "./json-tree.js";

const authCase: fc.Arbitrary<AuthCase> = fc.oneof(
  { weight: 40, arbitrary: fc.constantFrom<AuthCase>("ok", "ok-x-api-key") },
  { weight: 2, arbitrary: fc.constantFrom<AuthCase>("missing", "wrong-key", "basic", "bearer-only", "two-tokens") },
);

interface PostRoute {
  path: string;
  dialect: Dialect;
  dispatches: boolean;
  valid: fc.Arbitrary<JsonTree>;
  /** Cases to send (about; in batches). */
  cases: number;
}

const postRoutes: PostRoute[] = [
  { path: "/v1/chat/completions", dialect: "openai", dispatches: true, valid: chatBody, cases: 1_600 },
  { path: "/v1/completions", dialect: "openai", dispatches: true, valid: completionsBody, cases: 1_600 },
  { path: "/v1/responses", dialect: "openai", dispatches: true, valid: responsesBody, cases: 1_600 },
  { path: "/v1/messages", dialect: "anthropic", dispatches: true, valid: messagesBody, cases: 1_600 },
  { path: "/v1/messages/count_tokens", dialect: "anthropic", dispatches: false, valid: countTokensBody, cases: 1_600 },
];

/** Counts answers by status, for the report line. */
function tally(): { add(s: number): void; readonly total: number; toString(): string } {
  const m = new Map<number, number>();
  let total = 0;
  return {
    add: (s) => {
      total++;
      m.set(s, (m.get(s) ?? 0) + 1);
    },
    get total() {
      return total;
    },
    toString: () =>
      [...m]
        .sort((a, b) => a[0] - b[0])
        .map(([s, n]) => `${s}×${n}`)
        .join(" "),
  };
}

describe("fuzz: consumer routes", function () {
  this.timeout(180_000);
  let t: FuzzTarget;
  let rssAfterWarmUp = 0;

  before(async function () {
    if (process.platform !== "linux") this.skip(); // RSS is read from /proc
    t = await startFuzzTarget();
    // Warm every path first, so one-time allocations (JIT, pools, caches) are not counted as growth.
    for (let i = 0; i < 10; i++) {
      for (const r of postRoutes) {
        const body = Buffer.from(JSON.stringify(fc.sample(r.valid, { numRuns: 1, seed: i })[0]));
        await t.send({
          method: "POST",
          path: r.path,
          headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
          body,
        });
      }
    }
    rssAfterWarmUp = t.rssBytes();
  });
  after(async () => {
    await t?.close();
  });

  for (const route of postRoutes) {
    it(`answers ~${route.cases} generated and mutated POST ${route.path} bodies with only the route's legitimate statuses`, async () => {
      const started = performance.now();
      const cpu = t.cpuSeconds();
      const statuses = tally();
      const wrongKey = `sk-fuzz-wrong-${Date.now()}`;
      const postCase = fc.record({ body: bodyCase(route.valid), contentType, auth: authCase });
      await fc.assert(
        fc.asyncProperty(batchOf(postCase), (batch) =>
          allOf(batch, async (c) => {
            const body = renderBody(c.body);
            const headers: Record<string, string> = { ...authHeaders(c.auth, t.apiKey, wrongKey) };
            if (c.contentType !== undefined) headers["content-type"] = c.contentType;
            try {
              const res = await t.send({
                method: "POST",
                path: route.path,
                headers,
                body,
                ...(authOk(c.auth) ? {} : { localAddress: STRANGER_ADDRESS }),
              });
              statuses.add(
                checkInferenceAnswer(
                  {
                    dialect: route.dialect,
                    dispatches: route.dispatches,
                    auth: c.auth,
                    jsonContentType: isJsonContentType(c.contentType),
                  },
                  res,
                ),
              );
            } catch (e) {
              throw new Error(
                `${(e as Error).message}\n  for POST ${route.path} (${c.auth}, ${c.contentType}) body ${preview(body)}`,
              );
            }
          }),
        ),
        fuzzParameters(runsFor(route.cases)),
      );
      await t.assertAlive();
      report(
        `POST ${route.path}`,
        statuses.total,
        started,
        `${statuses}; coordinator CPU ${(t.cpuSeconds() - cpu).toFixed(1)} s`,
      );
    });
  }

  it("answers ~1500 generated requests to the other routes (any method, fuzzed path segments, queries, bodies) with only their legitimate statuses", async () => {
    const started = performance.now();
    const statuses = tally();
    const segment = fc.oneof(
      fc.constantFrom("gpt-oss-20b", "qwen3-8b", "nope", "FUZZ-MAC-1", "%E0", "%00", "..", "a%2Fb"),
      (hostileString.filter((s) => typeof s === "string" && s.length > 0) as fc.Arbitrary<string>).map(percentEncode),
    );
    const query = fc.oneof(
      fc.constantFrom("", "0", "1700000000000", "999999999999999", "9999999999999999", "-1", "1e3", "abc", "%00"),
      fc.string({ maxLength: 20 }).map(percentEncode),
    );
    const target = fc.oneof(
      fc.constantFrom(
        "/health",
        "/healthz",
        "/v1/models",
        "/v1/models/capacity",
        "/v1/me/usage",
        "/v1/me/providers",
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/nope",
        "/",
        "/v1/models/",
      ),
      segment.map((s) => `/v1/models/${s}`),
      segment.map((s) => `/v1/me/providers/${s}`),
      segment.map((s) => `/v1/messages/${s}`),
      query.map((q) => `/v1/me/usage?since_ms=${q}`),
    );
    const req = fc.record({
      method: fc.constantFrom("GET", "GET", "GET", "HEAD", "DELETE", "PUT", "PATCH", "OPTIONS", "POST"),
      target,
      auth: authCase,
      origin: fc.boolean(),
      body: fc.option(fc.uint8Array({ maxLength: 64 }), { freq: 4 }),
    });
    await fc.assert(
      fc.asyncProperty(batchOf(req), (batch) =>
        allOf(batch, async (c) => {
          const headers: Record<string, string> = { ...authHeaders(c.auth, t.apiKey, "sk-fuzz-wrong") };
          if (c.origin) headers.origin = "https://app.example";
          if (c.method === "OPTIONS" && c.origin) headers["access-control-request-method"] = "POST";
          try {
            const from = authOk(c.auth) ? {} : { localAddress: STRANGER_ADDRESS };
            const res = await t.send({
              method: c.method,
              path: c.target,
              headers,
              ...from,
              ...(c.body ? { body: Buffer.from(c.body) } : {}),
            });
            statuses.add(checkOtherRoute(c.method, c.target, c.auth, c.origin, res));
          } catch (e) {
            throw new Error(`${(e as Error).message}\n  for ${c.method} ${c.target} (${c.auth})`);
          }
        }),
      ),
      fuzzParameters(runsFor(1_500)),
    );
    await t.assertAlive();
    report("other routes", statuses.total, started, String(statuses));
  });

  it("is still alive afterwards, with nothing in flight, its resident set bounded and the ledger verified clean", async function () {
    if (!t) this.skip();
    await t.assertAlive();
    // Streams and settlements end shortly after their answers.
    const until = Date.now() + 5_000;
    let health: Record<string, unknown> = {};
    for (;;) {
      health = JSON.parse((await t.send({ method: "GET", path: "/health" })).body) as Record<string, unknown>;
      if (health.requests_in_flight === 0 || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(health.requests_in_flight, 0, `requests left in flight: ${JSON.stringify(health)}`);
    checkRssGrowth(t, rssAfterWarmUp);
    assert.deepEqual(loggedErrors(t), [], "the coordinator logged no internal error");
    // Thousands of served, refused and failed requests later, the books still balance.
    await stopAndVerifyLedger(t);
  });
});

/** The statuses each non-inference route may answer (mirrors the route table in src/http/routes.ts). */
function checkOtherRoute(method: string, target: string, auth: AuthCase, origin: boolean, res: FuzzResponse): number {
  const s = res.status;
  let path: string;
  try {
    path = new URL(target, "http://localhost").pathname.replace(/\/+$/, "") || "/";
  } catch {
    path = "/";
  }
  const dialect: Dialect = path === "/v1/messages" || path.startsWith("/v1/messages/") ? "anthropic" : "openai";
  const shape = () => {
    if (method !== "HEAD") checkErrorShape(dialect, res);
  };
  if (origin && method === "OPTIONS") {
    expect(s === 204 && res.headers["access-control-allow-origin"] !== undefined, "a CORS preflight gets 204", res);
    return s;
  }
  const read = method === "GET" || method === "HEAD";
  const rule = routeRule(path);
  if (rule === undefined) {
    expect(s === 404, `an unknown path (${path}) is a 404`, res);
    shape();
    return s;
  }
  if (!rule.methods.includes(method)) {
    expect(s === 405 && typeof res.headers.allow === "string", `wrong method on ${path}: 405 with Allow`, res);
    shape();
    return s;
  }
  if (rule.auth && !authOk(auth)) {
    expect(
      s === 401 || (s === 429 && res.headers["retry-after"] !== undefined),
      "bad credentials are refused with 401",
      res,
    );
    shape();
    return s;
  }
  expect(rule.ok.includes(s), `${method} ${path}: one of ${rule.ok.join(", ")}`, res);
  if (s === 429 && method === "GET") {
    expect(
      res.headers["retry-after"] !== undefined && res.body.includes('"code":"usage_query_in_flight"'),
      `${path}: a 429 is a usage query in flight, with Retry-After`,
      res,
    );
  }
  if (s >= 400) shape();
  else if (read && method === "GET") JSON.parse(res.body);
  return s;
}

/** Methods, authentication and statuses of a path (undefined: no such route). */
function routeRule(path: string): { methods: string[]; auth: boolean; ok: number[] } | undefined {
  const read = ["GET", "HEAD"];
  switch (path) {
    case "/health":
    case "/healthz":
    case "/v1/models/capacity":
      return { methods: read, auth: false, ok: [200] };
    case "/v1/models":
    case "/v1/me/providers":
      return { methods: read, auth: true, ok: [200] };
    case "/v1/me/usage":
      // 429 when a different usage query of the account is in flight (the fuzzer sends requests concurrently).
      return { methods: read, auth: true, ok: [200, 400, 429] };
    case "/v1/chat/completions":
    case "/v1/completions":
    case "/v1/responses":
    case "/v1/messages":
    case "/v1/messages/count_tokens":
      // A junk body (or none): refused as invalid, never served.
      return { methods: ["POST"], auth: true, ok: [400] };
  }
  if (/^\/v1\/me\/providers\/[^/]+$/.test(path)) return { methods: ["DELETE"], auth: true, ok: [200, 404] };
  if (/^\/v1\/models\/.+$/.test(path)) return { methods: read, auth: true, ok: [200, 404] };
  return undefined;
}

/** Percent-encodes every UTF-8 byte outside the unreserved set (lone surrogates become U+FFFD's bytes). */
function percentEncode(s: string): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8"))
    out += /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b))
      ? String.fromCharCode(b)
      : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  return out;
}
