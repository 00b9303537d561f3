/**
 * Admin API inputs (issue 13, item 3): text is checked before it reaches PostgreSQL, duplicates are
 * `already_exists`, and money, counts and times are bounded so no sum can overflow. None of these is a 500.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { type AccountTier, AdminService } from "../../gen/coordinator/admin/v1/admin_pb.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";

const INT64_MAX = 2n ** 63n - 1n;

describe("admin API input validation", function () {
  this.timeout(60_000);
  let t: TestCoordinator;
  let admin: Client<typeof AdminService>;
  let accountId: string;
  before(async () => {
    t = await startTestCoordinator({ macs: [] });
    admin = createClient(
      AdminService,
      createConnectTransport({
        baseUrl: t.baseUrl,
        httpVersion: "1.1",
        interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${t.adminKey}`), next(req))],
      }),
    );
    accountId = (await admin.createAccount({ name: "validation", initialCreditMicroUsd: 1_000_000n })).account!.id;
  });
  after(async () => t?.close());

  /** Asserts a Connect error with `code` whose message names `field`. */
  const refusedWith = (code: Code, field?: string) => (e: unknown) => {
    assert.ok(e instanceof ConnectError, String(e));
    assert.equal(e.code, code, `${Code[e.code]}: ${e.message}`);
    if (field !== undefined) assert.ok(e.message.includes(field), e.message);
    return true;
  };
  const invalid = (field: string) => refusedWith(Code.InvalidArgument, field);

  /** Posts Connect JSON as curl would; returns the status and body. */
  async function postRaw(
    method: string,
    body: string,
  ): Promise<{ status: number; body: { code?: string; message?: string } }> {
    const res = await fetch(`${t.baseUrl}/coordinator.admin.v1.AdminService/${method}`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
      body,
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as { code?: string; message?: string }) : {} };
  }

  it("creates one account per request_id over Connect: a retried CreateAccount returns it, credited once", async () => {
    const req = { name: "retried over connect", initialCreditMicroUsd: 5_000n, requestId: "ops-2026-12-07-1" };
    const a = (await admin.createAccount(req)).account!;
    const b = (await admin.createAccount(req)).account!;
    assert.equal(b.id, a.id);
    assert.equal(b.balanceMicroUsd, 5_000n);
    await assert.rejects(
      admin.createAccount({ ...req, name: "someone else" }),
      refusedWith(Code.AlreadyExists, "request_id"),
    );
  });

  it("refuses a NUL byte, a lone surrogate, a control character or an over-long text in every text field with invalid_argument", async () => {
    for (const bad of ["a\u0000b", "line\nbreak", "tab\tand\u0085", "x".repeat(201)]) {
      await assert.rejects(admin.createAccount({ name: bad }), invalid("name"), JSON.stringify(bad));
      await assert.rejects(admin.issueApiKey({ accountId, name: bad }), invalid("name"));
      await assert.rejects(admin.issueProviderToken({ accountId, name: bad }), invalid("name"));
      await assert.rejects(
        admin.creditAccount({ accountId, amountMicroUsd: 1n, reference: bad }),
        invalid("reference"),
      );
      await assert.rejects(admin.createAccount({ name: "n", requestId: bad }), invalid("request_id"));
    }
    for (const bad of ["acct\u0000", "acct\u001b[31m", "a".repeat(65)]) {
      await assert.rejects(admin.getAccount({ accountId: bad }), invalid("account_id"));
      await assert.rejects(admin.getUsage({ accountId: bad }), invalid("account_id"));
      await assert.rejects(
        admin.creditAccount({ accountId: bad, amountMicroUsd: 1n, reference: "r" }),
        invalid("account_id"),
      );
      await assert.rejects(admin.revokeApiKey({ keyId: bad }), invalid("key_id"));
      await assert.rejects(admin.revokeProviderToken({ tokenId: bad }), invalid("token_id"));
    }
    await assert.rejects(admin.forgetProvider({ serial: "SERIAL\u0000" }), refusedWith(Code.InvalidArgument, "serial"));
    await assert.rejects(
      admin.setModelPrice({ model: "m\u0000", inputMicroUsdPerMtok: 1n, outputMicroUsdPerMtok: 1n }),
      refusedWith(Code.InvalidArgument, "model"),
    );

    // As curl sends them: the JSON escape \u0000 (it used to reach PostgreSQL and come back as a 500), and a lone
    // surrogate, which cannot be stored as UTF-8 (the Connect client replaces it before sending; curl does not).
    for (const body of ['{"name":"nul\\u0000byte"}', '{"name":"lone\\ud800surrogate"}']) {
      const raw = await postRaw("CreateAccount", body);
      assert.equal(raw.status, 400, body);
      assert.equal(raw.body.code, "invalid_argument", body);
    }
  });

  it("answers already_exists for a duplicate API key value and for a credit reference reused for a different credit", async () => {
    const value = `sk-${randomBytes(24).toString("base64url")}`;
    await admin.issueApiKey({ accountId, value });
    await assert.rejects(admin.issueApiKey({ accountId, value }), refusedWith(Code.AlreadyExists, "API key"));

    const other = (await admin.createAccount({ name: "other" })).account!.id;
    const once = await admin.creditAccount({ accountId, amountMicroUsd: 500n, reference: "invoice-42" });
    const replay = await admin.creditAccount({ accountId, amountMicroUsd: 500n, reference: "invoice-42" });
    assert.equal(replay.account?.balanceMicroUsd, once.account?.balanceMicroUsd, "the same credit again credits once");
    await assert.rejects(
      admin.creditAccount({ accountId, amountMicroUsd: 501n, reference: "invoice-42" }),
      refusedWith(Code.AlreadyExists, "reference"),
    );
    await assert.rejects(
      admin.creditAccount({ accountId: other, amountMicroUsd: 500n, reference: "invoice-42" }),
      refusedWith(Code.AlreadyExists, "reference"),
    );
    assert.equal((await admin.getAccount({ accountId: other })).account?.balanceMicroUsd, 0n);
  });

  it("bounds GetUsage since_unix_ms to [0, 10^15): INT64_MAX or a negative time is invalid_argument", async () => {
    await assert.rejects(admin.getUsage({ accountId, sinceUnixMs: INT64_MAX }), invalid("since_unix_ms"));
    await assert.rejects(admin.getUsage({ accountId, sinceUnixMs: -1n }), invalid("since_unix_ms"));
    await assert.rejects(admin.getUsage({ accountId, sinceUnixMs: 10n ** 15n }), invalid("since_unix_ms"));
    const future = await admin.getUsage({ accountId, sinceUnixMs: 10n ** 15n - 1n });
    assert.equal(future.requests, 0n);
    const raw = await postRaw("GetUsage", JSON.stringify({ accountId, sinceUnixMs: INT64_MAX.toString() }));
    assert.equal(raw.status, 400);
  });

  it("bounds money: a credit above 10^15 µUSD (INT64_MAX included), a negative or oversized spend cap and an oversized price are invalid_argument", async () => {
    await assert.rejects(
      admin.creditAccount({ accountId, amountMicroUsd: INT64_MAX, reference: "huge-1" }),
      invalid("amount_micro_usd"),
    );
    await assert.rejects(
      admin.creditAccount({ accountId, amountMicroUsd: 10n ** 15n + 1n, reference: "huge-2" }),
      invalid("amount_micro_usd"),
    );
    await assert.rejects(
      admin.createAccount({ name: "rich", initialCreditMicroUsd: INT64_MAX }),
      invalid("initial_credit_micro_usd"),
    );
    await assert.rejects(
      admin.createAccount({ name: "poor", initialCreditMicroUsd: -1n }),
      invalid("initial_credit_micro_usd"),
    );
    // The largest single credit is accepted, and the account stays readable.
    const max = await admin.creditAccount({ accountId, amountMicroUsd: 10n ** 15n, reference: "max-credit" });
    assert.ok(max.account!.balanceMicroUsd >= 10n ** 15n);

    await assert.rejects(admin.issueApiKey({ accountId, spendCapMicroUsd: -1n }), invalid("spend_cap_micro_usd"));
    await assert.rejects(admin.issueApiKey({ accountId, spendCapMicroUsd: INT64_MAX }), invalid("spend_cap_micro_usd"));
    await assert.rejects(
      admin.setModelPrice({ model: "gpt-oss-20b", inputMicroUsdPerMtok: INT64_MAX, outputMicroUsdPerMtok: 1n }),
      invalid("input_micro_usd_per_mtok"),
    );
    await assert.rejects(
      admin.setModelPrice({ model: "gpt-oss-20b", inputMicroUsdPerMtok: 1n, outputMicroUsdPerMtok: 10n ** 10n + 1n }),
      invalid("output_micro_usd_per_mtok"),
    );
  });

  it("refuses a credit that would take a balance past the 10^17 µUSD ceiling", async () => {
    const rich = (await admin.createAccount({ name: "near-ceiling" })).account!.id;
    // Written straight to the ledger (no single credit may be this large).
    await t.db.db
      .insertInto("ledger_entries")
      .values({
        account_id: rich,
        kind: "credit",
        amount_micro_usd: 10n ** 17n - 10n,
        request_id: null,
        reference: "seed-near-ceiling",
      })
      .execute();
    await admin.creditAccount({ accountId: rich, amountMicroUsd: 10n, reference: "to-the-ceiling" });
    await assert.rejects(
      admin.creditAccount({ accountId: rich, amountMicroUsd: 1n, reference: "past-the-ceiling" }),
      invalid("ceiling"),
    );
    assert.equal((await admin.getAccount({ accountId: rich })).account?.balanceMicroUsd, 10n ** 17n);
  });

  it("refuses an AccountTier number outside the enum", async () => {
    await assert.rejects(
      admin.createAccount({ name: "odd-tier", tier: 7 as AccountTier }),
      refusedWith(Code.InvalidArgument, "tier"),
    );
  });
});
