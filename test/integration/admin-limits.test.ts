/**
 * Per-account and per-key limits set through the admin API (issue 13, item 6): requests and tokens per minute,
 * concurrency and spend caps override the tier defaults without a restart and show in the x-ratelimit-* headers.
 */
import assert from "node:assert/strict";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService } from "../../gen/coordinator/admin/v1/admin_pb.js";
import { postJson, type RawResponse } from "../support/http.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";

describe("limits set through the admin API", function () {
  this.timeout(60_000);
  let t: TestCoordinator;
  let admin: Client<typeof AdminService>;
  before(async () => {
    t = await startTestCoordinator({ macs: [{}] });
    admin = createClient(
      AdminService,
      createConnectTransport({
        baseUrl: t.baseUrl,
        httpVersion: "1.1",
        interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${t.adminKey}`), next(req))],
      }),
    );
  });
  after(async () => t?.close());

  const chat = (apiKey: string): Promise<RawResponse> =>
    postJson(`${t.apiBase}/chat/completions`, apiKey, {
      model: "gpt-oss-20b",
      max_tokens: 8,
      messages: [{ role: "user", content: "hi" }],
    });

  /** A funded account with two keys. */
  async function accountWithTwoKeys(name: string) {
    const { account } = await admin.createAccount({ name, initialCreditMicroUsd: 10_000_000n });
    const a = await admin.issueApiKey({ accountId: account!.id, name: "a" });
    const b = await admin.issueApiKey({ accountId: account!.id, name: "b" });
    return { accountId: account!.id, a, b };
  }

  const isConnect = (code: Code, field?: string) => (e: unknown) =>
    e instanceof ConnectError && e.code === code && (field === undefined || e.message.includes(field));

  it("gives one key its own requests/min: its headers show it, it gets 429 at the boundary, another key of the account is unaffected, and clearing restores the tier", async () => {
    const { a, b } = await accountWithTwoKeys("key-rpm");
    // Used before the change, so the coordinator holds this key's principal (and its limits) in the key cache.
    const before = await chat(a.apiKey);
    assert.equal(before.status, 200, before.text);
    assert.equal(before.headers.get("x-ratelimit-limit-requests"), "1200", "consumer tier: 20/s");

    const set = await admin.setLimits({ subject: { case: "keyId", value: a.keyId }, limits: { requestsPerMin: 3 } });
    assert.equal(set.limits?.requestsPerMin, 3);
    assert.equal(set.effective?.requestsPerMin, 3);
    assert.equal(set.effective?.requestsBurst, 3, "the burst follows a lowered rate");

    for (let i = 0; i < 3; i++) {
      const r = await chat(a.apiKey);
      assert.equal(r.status, 200, `request ${i + 1} of 3: ${r.text}`);
      assert.equal(r.headers.get("x-ratelimit-limit-requests"), "3");
      assert.equal(r.headers.get("x-ratelimit-remaining-requests"), String(2 - i));
    }
    const refused = await chat(a.apiKey);
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.headers.get("x-ratelimit-limit-requests"), "3");
    assert.equal(refused.headers.get("x-ratelimit-remaining-requests"), "0");
    assert.ok(Number(refused.headers.get("retry-after")) >= 1);
    const body = JSON.parse(refused.text) as { error: { code: string; message: string } };
    assert.equal(body.error.code, "rate_limit_exceeded");
    assert.match(body.error.message, new RegExp(`requests rate limit exceeded for API key ${a.keyId}`));

    const other = await chat(b.apiKey);
    assert.equal(other.status, 200, "the account's other key keeps the tier limits");
    assert.equal(other.headers.get("x-ratelimit-limit-requests"), "1200");

    const cleared = await admin.setLimits({ subject: { case: "keyId", value: a.keyId }, limits: {} });
    assert.deepEqual(cleared.limits?.requestsPerMin, undefined);
    const after = await chat(a.apiKey);
    assert.equal(after.status, 200, after.text);
    assert.equal(after.headers.get("x-ratelimit-limit-requests"), "1200");
  });

  it("gives an account its own limits, shared by every key of it; clearing restores the tier", async () => {
    const { accountId, a, b } = await accountWithTwoKeys("account-rpm");
    await admin.setLimits({
      subject: { case: "accountId", value: accountId },
      limits: { requestsPerMin: 2, outputTokensPerMin: 50_000 },
    });
    const first = await chat(a.apiKey);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get("x-ratelimit-limit-requests"), "2");
    assert.equal(first.headers.get("x-ratelimit-limit-output-tokens"), "50000");
    assert.equal((await chat(b.apiKey)).status, 200);
    const refused = await chat(a.apiKey);
    assert.equal(refused.status, 429);
    assert.match(refused.text, new RegExp(`for account ${accountId}`));
    assert.equal((await chat(b.apiKey)).status, 429, "the account's limit binds every key");

    // A key's own limit never loosens its account's: both buckets apply.
    await admin.setLimits({ subject: { case: "keyId", value: b.keyId }, limits: { requestsPerMin: 600 } });
    const got = await admin.getLimits({ subject: { case: "keyId", value: b.keyId } });
    assert.equal(got.accountId, accountId);
    assert.equal(got.limits?.requestsPerMin, 600);
    assert.equal(got.effective?.requestsPerMin, 2, "effective = the stricter of key and account");
    assert.equal(got.effective?.inputTokensPerMin, 5_000_000, "unset fields follow the tier");
    assert.equal((await chat(b.apiKey)).status, 429);

    await admin.setLimits({ subject: { case: "accountId", value: accountId }, limits: {} });
    const cleared = await chat(a.apiKey);
    assert.equal(cleared.headers.get("x-ratelimit-limit-requests"), "1200", "the tier's limit shows at once");
    assert.equal(cleared.headers.get("x-ratelimit-limit-output-tokens"), "500000");
    // Clearing forgives nothing: the emptied bucket refills at the tier's rate (20/s) from now on.
    await new Promise((r) => setTimeout(r, 100));
    const after = await chat(a.apiKey);
    assert.equal(after.status, 200, after.text);
    assert.equal(after.headers.get("x-ratelimit-limit-requests"), "1200");
  });

  it("limits concurrent requests: the one past the limit gets 429 naming it, and the headers show the limit", async () => {
    const { accountId, a, b } = await accountWithTwoKeys("concurrency");
    await admin.setLimits({ subject: { case: "accountId", value: accountId }, limits: { maxConcurrentRequests: 1 } });
    t.macs[0]!.script({ kind: "slow_first_token", delayMs: 1_500 });
    const slow = chat(a.apiKey);
    await new Promise((r) => setTimeout(r, 400));
    const refused = await chat(b.apiKey);
    assert.equal(refused.status, 429, refused.text);
    assert.match(refused.text, /concurrent_requests limit \(1\) reached for account/);
    assert.equal(refused.headers.get("x-ratelimit-limit-concurrent-requests"), "1");
    assert.equal(refused.headers.get("x-ratelimit-remaining-concurrent-requests"), "0");
    const first = await slow;
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get("x-ratelimit-limit-concurrent-requests"), "1");
    const next = await chat(b.apiKey);
    assert.equal(next.status, 200, "the slot is free again once the request finished");
    assert.equal(next.headers.get("x-ratelimit-remaining-concurrent-requests"), "0", "counting the request itself");
    await admin.setLimits({ subject: { case: "accountId", value: accountId }, limits: {} });
    const unlimited = await chat(b.apiKey);
    assert.equal(
      unlimited.headers.get("x-ratelimit-limit-concurrent-requests"),
      null,
      "no header without a concurrency limit",
    );
  });

  it("caps an account's and a key's spend: a request that could pass the cap gets 402", async () => {
    const { accountId, a, b } = await accountWithTwoKeys("spend-caps");
    assert.equal((await chat(a.apiKey)).status, 200);

    // Consumer requests cost at least 100 µUSD: a cap of 50 refuses the next one.
    await admin.setLimits({ subject: { case: "accountId", value: accountId }, limits: { spendCapMicroUsd: 50n } });
    const capped = await chat(b.apiKey);
    assert.equal(capped.status, 402, capped.text);
    assert.match(capped.text, /account's spend cap/);
    await admin.setLimits({ subject: { case: "accountId", value: accountId }, limits: {} });
    assert.equal((await chat(b.apiKey)).status, 200);

    await admin.setLimits({ subject: { case: "keyId", value: a.keyId }, limits: { spendCapMicroUsd: 0n } });
    const keyCapped = await chat(a.apiKey);
    assert.equal(keyCapped.status, 402, keyCapped.text);
    assert.match(keyCapped.text, /API key's spend cap/);
    assert.equal((await chat(b.apiKey)).status, 200, "the other key has no cap");
    const got = await admin.getLimits({ subject: { case: "keyId", value: a.keyId } });
    assert.equal(got.limits?.spendCapMicroUsd, 0n);
    assert.equal(got.effective?.spendCapMicroUsd, 0n);
    await admin.setLimits({ subject: { case: "keyId", value: a.keyId }, limits: {} });
    assert.equal((await chat(a.apiKey)).status, 200);
  });

  it("applies a change written by another coordinator within the API-key cache TTL", async () => {
    const { a } = await accountWithTwoKeys("elsewhere");
    assert.equal((await chat(a.apiKey)).headers.get("x-ratelimit-limit-requests"), "1200");
    // Written to the database only, as another coordinator's SetLimits would be: this one learns it from the key
    // lookup once its cached principal expires (5 s by default).
    await t.coordinator.ledger.limits.set({ kind: "key", keyId: a.keyId }, { requestsPerMin: 600 });
    const startedMs = Date.now();
    let limit: string | null = "1200";
    while (limit !== "600") {
      assert.ok(Date.now() - startedMs < 7_000, "within the 5 s key-cache TTL (plus slack)");
      await new Promise((r) => setTimeout(r, 250));
      limit = (await chat(a.apiKey)).headers.get("x-ratelimit-limit-requests");
    }
  });

  it("refuses limits out of bounds, a missing subject and unknown accounts or keys", async () => {
    const { accountId, a } = await accountWithTwoKeys("limits-validation");
    const account = { case: "accountId" as const, value: accountId };
    await assert.rejects(
      admin.setLimits({ subject: account, limits: { requestsPerMin: 0 } }),
      isConnect(Code.InvalidArgument, "limits.requests_per_min"),
    );
    await assert.rejects(
      admin.setLimits({ subject: account, limits: { requestsPerMin: 1_000_001 } }),
      isConnect(Code.InvalidArgument, "limits.requests_per_min"),
    );
    await assert.rejects(
      admin.setLimits({ subject: account, limits: { inputTokensBurst: 1_000_000_001 } }),
      isConnect(Code.InvalidArgument, "limits.input_tokens_burst"),
    );
    await assert.rejects(
      admin.setLimits({ subject: account, limits: { maxConcurrentRequests: 100_001 } }),
      isConnect(Code.InvalidArgument, "limits.max_concurrent_requests"),
    );
    await assert.rejects(
      admin.setLimits({ subject: account, limits: { spendCapMicroUsd: -1n } }),
      isConnect(Code.InvalidArgument, "limits.spend_cap_micro_usd"),
    );
    await assert.rejects(
      admin.setLimits({ subject: account, limits: { spendCapMicroUsd: 10n ** 17n + 1n } }),
      isConnect(Code.InvalidArgument, "limits.spend_cap_micro_usd"),
    );
    await assert.rejects(
      admin.setLimits({ limits: { requestsPerMin: 5 } }),
      isConnect(Code.InvalidArgument, "account_id or key_id"),
    );
    await assert.rejects(
      admin.setLimits({ subject: { case: "accountId", value: "acct_missing" }, limits: {} }),
      isConnect(Code.NotFound),
    );
    await assert.rejects(
      admin.setLimits({ subject: { case: "keyId", value: "key_missing" }, limits: {} }),
      isConnect(Code.NotFound),
    );
    await assert.rejects(
      admin.getLimits({ subject: { case: "keyId", value: "key_\u0000" } }),
      isConnect(Code.InvalidArgument, "key_id"),
    );
    // Nothing was stored by the refused calls.
    const got = await admin.getLimits({ subject: { case: "keyId", value: a.keyId } });
    assert.deepEqual({ ...got.limits }, { ...(await admin.getLimits({ subject: account })).limits });
  });
});
