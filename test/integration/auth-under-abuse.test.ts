/**
 * Issue 13, item 2, through the real HTTP server and PostgreSQL: a spray of wrong keys from one client costs a
 * bounded number of database queries and then gets 429 + Retry-After; repeated wrong keys and concurrent first
 * uses of a key cost one query each; keys chosen at issue time must carry a real secret.
 *
 * Database lookups are counted with the `auth.key_lookups` metric (one per query the key cache makes). The
 * coordinator trusts one proxy hop here, so each test can play a different client with `X-Forwarded-For`.
 */
import assert from "node:assert/strict";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService } from "../../gen/coordinator/admin/v1/admin_pb.js";
import { setStatsd } from "../../src/telemetry/metrics.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { MIN_API_KEY_SECRET_CHARS } from "../../src/ledger/api-key-format.js";

interface Answer {
  status: number;
  retryAfter: string | null;
  code: string | undefined;
}

describe("authentication under abuse (key spraying, repeats, coalescing, weak keys)", function () {
  this.timeout(60_000);
  let t: TestCoordinator;
  const lookups = { count: 0 };

  before(async () => {
    // A long key TTL: "verified moments ago" must hold for the whole test on a slow machine.
    t = await startTestCoordinator({ macs: [{}], config: { trustedProxyHops: 1, apiKeyCacheTtlMs: 120_000 } });
    setStatsd({
      increment: (stat, value) => {
        if (stat === "auth.key_lookups") lookups.count += value;
      },
      distribution: () => undefined,
      gauge: () => undefined,
    });
  });
  after(async () => {
    setStatsd(undefined);
    await t?.close();
  });

  const get = async (key: string, client: string): Promise<Answer> => {
    const r = await fetch(`${t.apiBase}/models`, {
      headers: { authorization: `Bearer ${key}`, "x-forwarded-for": client },
    });
    const body = (await r.json()) as { error?: { code?: string } };
    return { status: r.status, retryAfter: r.headers.get("retry-after"), code: body.error?.code };
  };

  it("answers a spray of wrong keys with 429 + Retry-After after AUTH_FAILURE_BURST failures, without a database query each", async () => {
    const client = "198.51.100.7";
    assert.equal((await get(t.apiKey, client)).status, 200, "the real key, verified before the spray");
    const before = lookups.count;
    const started = performance.now();
    const answers: Answer[] = [];
    let n = 0;
    // 8 connections, 600 distinct wrong keys (distinct, so the negative cache cannot help).
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (n < 600) answers.push(await get(`sk-wrong-${n++}-${"x".repeat(20)}`, client));
      }),
    );
    const elapsedS = (performance.now() - started) / 1000;
    const queries = lookups.count - before;
    const unauthorized = answers.filter((a) => a.status === 401).length;
    const throttled = answers.filter((a) => a.status === 429);
    console.log(
      `      spray: ${answers.length} attempts in ${elapsedS.toFixed(1)} s (${Math.round(answers.length / elapsedS)}/s): ${unauthorized} × 401, ${throttled.length} × 429; ${queries} key lookups (${(queries / elapsedS).toFixed(1)}/s)`,
    );
    assert.equal(unauthorized + throttled.length, 600, "every attempt is a 401 or a 429");
    // 20 at once, at most 7 more already in flight when the budget ran out, then 2 per second.
    const bound = 20 + 7 + Math.ceil(2 * elapsedS) + 1;
    assert.ok(queries <= bound, `${queries} lookups for 600 attempts (bound ${bound})`);
    assert.equal(queries, unauthorized, "a lookup only for attempts answered 401");
    for (const a of throttled) {
      assert.equal(a.code, "too_many_failed_auth_attempts");
      assert.ok(Number(a.retryAfter) >= 1, `Retry-After ${a.retryAfter}`);
    }

    // The real key from the same address still works: the cache vouches for it (verified moments ago).
    assert.equal((await get(t.apiKey, client)).status, 200);
    // A valid key the cache cannot vouch for waits like any other attempt from that address.
    const fresh = await t.coordinator.ledger.accounts.issueApiKey({ accountId: t.accountId });
    const refused = await get(fresh.apiKey, client);
    assert.equal(refused.status, 429);
    // Other clients are unaffected.
    assert.equal((await get(fresh.apiKey, "203.0.113.50")).status, 200);
  });

  it("lets a throttled address try again once Retry-After has passed", async () => {
    const client = "198.51.100.8";
    for (let i = 0; i < 20; i++) assert.equal((await get(`sk-miss-${i}-${"y".repeat(20)}`, client)).status, 401);
    const throttled = await get(`sk-miss-x-${"y".repeat(20)}`, client);
    assert.equal(throttled.status, 429);
    await new Promise((r) => setTimeout(r, Number(throttled.retryAfter) * 1000));
    assert.equal((await get(t.apiKey, client)).status, 200);
    assert.equal((await get(`sk-miss-y-${"y".repeat(20)}`, client)).status, 401, "a wrong key is looked up again");
  });

  it("costs one database query for a wrong key repeated (negative cache)", async () => {
    const before = lookups.count;
    for (let i = 0; i < 10; i++) assert.equal((await get(`sk-always-the-same-wrong-key`, "198.51.100.9")).status, 401);
    assert.equal(lookups.count - before, 1);
  });

  it("coalesces concurrent first uses of a key into one database query", async () => {
    const { apiKey } = await t.coordinator.ledger.accounts.issueApiKey({ accountId: t.accountId });
    const before = lookups.count;
    const answers = await Promise.all(Array.from({ length: 50 }, () => get(apiKey, "198.51.100.10")));
    assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]));
    assert.equal(lookups.count - before, 1, "50 concurrent requests, one lookup");
  });

  it("refuses to issue a chosen key without a real secret (IssueApiKey.value), and accepts a strong one", async () => {
    const admin = createClient(
      AdminService,
      createConnectTransport({
        baseUrl: t.baseUrl,
        httpVersion: "1.1",
        interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${t.adminKey}`), next(req))],
      }),
    );
    const min = MIN_API_KEY_SECRET_CHARS;
    for (const value of [
      "sk-",
      "sk-test",
      `sk-${"a".repeat(min - 1)}`,
      `sk-${"a".repeat(min - 1)}!`,
      `sk-${"a".repeat(257)}`,
    ]) {
      await assert.rejects(
        admin.issueApiKey({ accountId: t.accountId, value }),
        (e: unknown) =>
          e instanceof ConnectError &&
          e.code === Code.InvalidArgument &&
          new RegExp(`${min} to 256 characters`).test(e.message),
        `value ${JSON.stringify(value.slice(0, 30))}`,
      );
    }
    const value = `sk-${"Ab3_-".repeat(4)}`;
    const k = await admin.issueApiKey({ accountId: t.accountId, value });
    assert.equal(k.apiKey, value);
    assert.equal((await get(value, "198.51.100.11")).status, 200);
  });
});
