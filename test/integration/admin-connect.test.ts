import assert from "node:assert/strict";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import OpenAI from "openai";
import pg from "pg";
import { AccountTier, AdminService } from "../../gen/coordinator/admin/v1/admin_pb.js";
import { USAGE_QUERIES_PER_ACCOUNT, USAGE_QUERY_RETRY_AFTER_S } from "../../src/http/usage-query-gate.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { eventually } from "../support/http.js";

describe("admin Connect service", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  before(async () => {
    t = await startTestCoordinator({ macs: [{}] });
  });
  after(async () => t?.close());

  const client = (key: string) =>
    createClient(
      AdminService,
      createConnectTransport({
        baseUrl: t.baseUrl,
        httpVersion: "1.1",
        interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${key}`), next(req))],
      }),
    );

  it("creates an account, credits it idempotently, issues a key that works, and revokes it", async () => {
    const admin = client(t.adminKey);
    const { account } = await admin.createAccount({
      name: "acme",
      tier: AccountTier.SERVICE,
      initialCreditMicroUsd: 5_000_000n,
    });
    assert.ok(account?.id);
    assert.equal(account.tier, AccountTier.SERVICE);
    assert.equal(account.balanceMicroUsd, 5_000_000n);

    await admin.creditAccount({ accountId: account.id, amountMicroUsd: 1_000_000n, reference: "invoice-1" });
    const twice = await admin.creditAccount({
      accountId: account.id,
      amountMicroUsd: 1_000_000n,
      reference: "invoice-1",
    });
    assert.equal(twice.account?.balanceMicroUsd, 6_000_000n, "the same reference credits once");

    const { apiKey, keyId } = await admin.issueApiKey({ accountId: account.id, name: "prod" });
    assert.match(apiKey, /^sk-/);
    const openai = new OpenAI({ baseURL: t.apiBase, apiKey, maxRetries: 0 });
    const r = await openai.chat.completions.create({
      model: "gpt-oss-20b",
      max_tokens: 8,
      messages: [{ role: "user", content: "hi" }],
    });
    assert.ok(r.choices[0]!.message.content);

    await admin.revokeApiKey({ keyId });
    await assert.rejects(openai.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
  });

  it("lists connected providers and issues provider tokens", async () => {
    const admin = client(t.adminKey);
    const { providers } = await admin.listProviders({});
    assert.equal(providers.length, 1);
    assert.deepEqual(providers[0]!.models, ["gpt-oss-20b"]);
    assert.equal(providers[0]!.accountId, t.providerAccountId);
    const { token } = await admin.issueProviderToken({ accountId: t.providerAccountId, name: "rack-2" });
    assert.ok(token.length >= 20);
  });

  it("is usable with plain JSON (curl), int64 as strings", async () => {
    const res = await fetch(`${t.baseUrl}/coordinator.admin.v1.AdminService/CreateAccount`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "curl-co", tier: "ACCOUNT_TIER_CONSUMER", initialCreditMicroUsd: "250" }),
    });
    assert.equal(res.status, 200);
    const j = (await res.json()) as { account: { balanceMicroUsd: string; tier: string } };
    assert.equal(j.account.balanceMicroUsd, "250");
    assert.equal(j.account.tier, "ACCOUNT_TIER_CONSUMER");

    // A typo is an error, not silently the default tier.
    const typo = await fetch(`${t.baseUrl}/coordinator.admin.v1.AdminService/CreateAccount`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "gold-co", tier: "GOLD" }),
    });
    assert.equal(typo.status, 400);
    assert.equal(((await typo.json()) as { code: string }).code, "invalid_argument");
  });

  it("refuses callers without the admin key and validates input", async () => {
    await assert.rejects(
      client("wrong").listProviders({}),
      (e: unknown) => e instanceof ConnectError && e.code === Code.Unauthenticated,
    );
    await assert.rejects(
      client(t.adminKey).createAccount({ name: "" }),
      (e: unknown) => e instanceof ConnectError && e.code === Code.InvalidArgument,
    );
    await assert.rejects(
      client(t.adminKey).creditAccount({ accountId: "nope", amountMicroUsd: 1n, reference: "x" }),
      (e: unknown) => e instanceof ConnectError && e.code === Code.NotFound,
    );
    await assert.rejects(
      client(t.adminKey).issueApiKey({ accountId: "" }),
      (e: unknown) => e instanceof ConnectError && e.code === Code.InvalidArgument,
    );
    await assert.rejects(
      client(t.adminKey).issueApiKey({ accountId: "acct_missing" }),
      (e: unknown) => e instanceof ConnectError && e.code === Code.NotFound && !/constraint|violates/i.test(e.message),
    );
  });

  it("reports usage per account (Connect and GET /v1/me/usage)", async () => {
    const openai = new OpenAI({ baseURL: t.apiBase, apiKey: t.apiKey, maxRetries: 0 });
    await openai.chat.completions.create({
      model: "gpt-oss-20b",
      max_tokens: 8,
      messages: [{ role: "user", content: "hi" }],
    });
    await t.coordinator.ledger.flush();
    const u = await client(t.adminKey).getUsage({ accountId: t.accountId });
    assert.ok(u.requests >= 1n);
    assert.ok(u.spentMicroUsd > 0n);
    const me = (await (
      await fetch(`${t.apiBase}/me/usage`, { headers: { authorization: `Bearer ${t.apiKey}` } })
    ).json()) as { requests: number; spent_micro_usd: number };
    assert.equal(BigInt(me.requests), u.requests);
    assert.equal(BigInt(me.spent_micro_usd), u.spentMicroUsd);
    for (const bad of ["abc", "-5", "1.5"]) {
      const r = await fetch(`${t.apiBase}/me/usage?since_ms=${bad}`, {
        headers: { authorization: `Bearer ${t.apiKey}` },
      });
      assert.equal(r.status, 400, `since_ms=${bad}`);
      assert.equal(((await r.json()) as { error: { param: string } }).error.param, "since_ms");
    }
  });

  it(`GET /v1/me/usage: ${USAGE_QUERIES_PER_ACCOUNT} query per account at a time; an identical call shares it, another gets 429`, async () => {
    const get = (since?: number) =>
      fetch(`${t.apiBase}/me/usage${since === undefined ? "" : `?since_ms=${since}`}`, {
        headers: { authorization: `Bearer ${t.apiKey}` },
      });
    // Hold the table so the first query waits in PostgreSQL (a long scan of a big account, made deterministic).
    const lock = await new pg.Client({ connectionString: t.db.url });
    await lock.connect();
    try {
      await lock.query("BEGIN; LOCK TABLE ledger_requests IN ACCESS EXCLUSIVE MODE");
      const first = get(0);
      await eventually(async () => {
        const { rows } = await lock.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%consumer_debit_micro_usd%'",
        );
        return rows[0].n >= 1;
      });
      const same = get(); // no since_ms: since 0, the same query
      const other = await get(1);
      assert.equal(other.status, 429);
      assert.equal(other.headers.get("retry-after"), String(USAGE_QUERY_RETRY_AFTER_S));
      const body = (await other.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, "usage_query_in_flight");
      assert.match(body.error.message, /already running/);
      await lock.query("COMMIT");
      const [a, b] = await Promise.all([first, same]);
      assert.deepEqual([a.status, b.status], [200, 200]);
      assert.deepEqual(await a.json(), await b.json());
      // The account's query is over: another since_ms is served.
      assert.equal((await get(1)).status, 200);
    } finally {
      await lock.end();
    }
  });
});
