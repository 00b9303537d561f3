/**
 * The REST handler over a real loopback server with hand-written fakes behind it: the paths an outside caller
 * cannot reach on purpose (a route failing outside its own error handling) and what the scheduler is handed.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Dispatcher } from "../../../src/dispatch/dispatcher.js";
import type { DispatchJob } from "../../../src/dispatch/types.js";
import { CoordinatorError } from "../../../src/errors/coordinator-error.js";
import { AuthFailureThrottle } from "../../../src/http/auth-failure-throttle.js";
import { BodyBudget } from "../../../src/http/body-budget.js";
import { affinityDigest } from "../../../src/http/dispatch-job.js";
import { requestLimitsFrom } from "../../../src/http/request-limits.js";
import { restHandler, type RouteDeps } from "../../../src/http/routes.js";
import { loadConfig } from "../../../src/config/config.js";
import type { RateLimiter } from "../../../src/ratelimit/types.js";

function fakeDeps(over: Partial<RouteDeps> = {}): RouteDeps {
  const config = loadConfig({});
  const admitted = {
    ok: true as const,
    ticket: { accountId: "a", keyId: "k", model: "m", chargedInputTokens: 0, chargedOutputTokens: 0 },
    headers: {},
  };
  const limiter: RateLimiter = {
    admit: () => admitted,
    admitWaiting: async () => admitted,
    reconcile: () => undefined,
    headers: () => ({}),
  };
  return {
    accounts: {
      authenticate: async () => ({ accountId: "a", keyId: "k", tier: "consumer" }),
      authenticateCached: () => undefined,
    } as unknown as RouteDeps["accounts"],
    authFailures: new AuthFailureThrottle(),
    trustedProxyHops: 0,
    ledger: {
      reserve: async () => ({ ok: true, reservedMicroUsd: 0n }),
      settle: async () => ({}),
      release: async () => undefined,
    } as unknown as RouteDeps["ledger"],
    limiter,
    dispatcher: {} as Dispatcher,
    clock: { nowMs: () => Date.now(), setTimeout: () => () => undefined } as unknown as RouteDeps["clock"],
    preflight: (req) => ({ build: req.model, decision: { kind: "queue", reason: "all_busy", retryAfterMs: 1_000 } }),
    models: {
      isKnown: () => true,
      limits: () => ({ contextLength: 8_192, acceptsImages: false }),
      defaultMaxTokens: () => 16,
      list: () => [],
    } as unknown as RouteDeps["models"],
    maxBodyBytes: config.maxBodyBytes,
    bodyBudget: new BodyBudget(config.maxInflightBodyBytes),
    limits: requestLimitsFrom(config),
    capacity: () => ({}),
    health: () => ({ status: "ok" }),
    readiness: () => ({ ready: true, checks: { migrations: "ok", ledger: "ok", serving: "ok" } }),
    usage: async () => ({}),
    ownedProviders: async () => [],
    forgetOwnedProvider: async () => false,
    ...over,
  };
}

describe("restHandler", () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r) ?? r(undefined));
    server = undefined;
  });
  const serve = async (deps: RouteDeps): Promise<string> => {
    server = createServer(restHandler(deps));
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  const post = (base: string, path: string, body: unknown) =>
    fetch(`${base}${path}`, {
      method: "POST",
      headers: { authorization: "Bearer sk-x", "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  it("answers a route failure outside the route's own handling in the route's dialect (Anthropic on /v1/messages)", async () => {
    // A limiter that fails while an error answer is being prepared: the failure escapes handleInference.
    const limiter: RateLimiter = {
      admit: () => assert.fail(),
      admitWaiting: () => assert.fail(),
      reconcile: () => undefined,
      headers: () => {
        throw new Error("boom");
      },
    };
    const base = await serve(fakeDeps({ limiter }));
    const messages = await post(base, "/v1/messages", { model: "m" });
    assert.equal(messages.status, 500);
    assert.deepEqual(await messages.json(), { type: "error", error: { type: "api_error", message: "internal error" } });
    const chat = await post(base, "/v1/chat/completions", { model: "m" });
    assert.equal(chat.status, 500);
    assert.deepEqual(await chat.json(), {
      error: { message: "internal error", type: "api_error", code: "internal", param: null },
    });
  });

  it("hands the scheduler a 16-character affinity digest, computed once per request whatever the caller's key", async () => {
    const jobs: DispatchJob[] = [];
    const dispatcher = {
      dispatch: async (job: DispatchJob) => {
        jobs.push(job);
        return { kind: "failed", committed: false, attempts: 1, error: new CoordinatorError("provider_failed", "no") };
      },
    } as unknown as Dispatcher;
    const base = await serve(
      fakeDeps({
        dispatcher,
        preflight: (req) => ({
          build: req.model,
          decision: { kind: "picked", providerId: "p", reason: "warm", cold: false, reservedTokens: 1, costMs: 1 },
        }),
      }),
    );
    const long = "u".repeat(256);
    for (const user of [long, long, "short"]) {
      const r = await post(base, "/v1/chat/completions", {
        model: "m",
        user,
        messages: [{ role: "user", content: "hi" }],
      });
      assert.equal(r.status, 502);
    }
    assert.deepEqual(
      jobs.map((j) => j.affinityKey),
      [affinityDigest(long), affinityDigest(long), affinityDigest("short")],
    );
    for (const j of jobs) assert.equal(j.affinityKey!.length, 16);
    assert.notEqual(affinityDigest(long), affinityDigest("short"));
  });

  it("answers /livez 200 whatever readiness says, and /readyz 503 naming the failing check until it is ready", async () => {
    let ready: ReturnType<RouteDeps["readiness"]> = {
      ready: false,
      checks: { migrations: "ok", ledger: "degraded", serving: "ok" },
    };
    const base = await serve(fakeDeps({ readiness: () => ready }));
    const live = await fetch(`${base}/livez`);
    assert.equal(live.status, 200);
    assert.deepEqual(await live.json(), { status: "ok" });
    const notReady = await fetch(`${base}/readyz`);
    assert.equal(notReady.status, 503);
    assert.equal(notReady.headers.get("cache-control"), "no-store");
    assert.deepEqual(await notReady.json(), {
      status: "not_ready",
      checks: { migrations: "ok", ledger: "degraded", serving: "ok" },
    });
    ready = { ready: true, checks: { migrations: "ok", ledger: "ok", serving: "ok" } };
    const nowReady = await fetch(`${base}/readyz/`, { method: "HEAD" });
    assert.equal(nowReady.status, 200, "HEAD and a trailing slash are probes too");
    const posted = await fetch(`${base}/readyz`, { method: "POST" });
    assert.equal(posted.status, 405);
    assert.equal(posted.headers.get("allow"), "GET, HEAD");
  });
});
