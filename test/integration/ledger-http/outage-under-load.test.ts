/**
 * Issue 13, item 2, "Done when": PostgreSQL stops accepting connections for 10 s while 8 clients on 3 accounts
 * (6 keys) keep sending requests. Known keys keep working past the key cache's TTL (stale-if-error), requests
 * are served from the credit this process already leased, an account whose lease is spent gets 429 +
 * Retry-After (never 401, 500 or 503), and once the database is back every request that was served is settled
 * exactly once, nothing that was refused is charged, and `verifyLedger` is clean.
 *
 * The outage is real for the coordinator's pool: `ALLOW_CONNECTIONS false` refuses every new connection and
 * `pg_terminate_backend` drops the open ones (test/support/database-reachability.ts).
 */
import assert from "node:assert/strict";
import { sql } from "kysely";
import { verifyLedger } from "../../../src/ledger/verify-ledger.js";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";
import { setDatabaseReachable } from "../../support/database-reachability.js";
import { postJson } from "../../support/http.js";

const OUTAGE_MS = 10_000;
const KEY_TTL_MS = 5_000; // API_KEY_CACHE_TTL_MS's default: the old cache's whole lifetime

interface Sent {
  client: number;
  account: "light1" | "light2" | "heavy";
  startMs: number;
  endMs: number;
  status: number;
  code: string | undefined;
  retryAfter: string | null;
  requestId: string | null;
}

describe("a PostgreSQL outage under load (HTTP API, real PostgreSQL)", function () {
  this.timeout(120_000);
  let t: TestCoordinator;
  let down = false;

  before(async () => {
    t = await startTestCoordinator({
      tier: "service",
      // A 20,000 µUSD lease: thousands of light requests (4 tokens, ≈2 µUSD each) but ~25 heavy ones (4,000
      // tokens, ≈800 µUSD), so the heavy account spends its lease early in the outage and the light ones do not.
      // (A lease is spent by what requests cost, not by what they reserve: unused reservations flow back.)
      config: { ledgerLeaseMicroUsd: 20_000, apiKeyCacheTtlMs: KEY_TTL_MS, queueLimit: 200 },
      macs: [
        { maxConcurrency: 16, naturalTokens: { min: 4_000, max: 4_000 } },
        { maxConcurrency: 16, naturalTokens: { min: 4_000, max: 4_000 } },
      ],
      // Only the ledger may shed here: no request-rate limit in the way.
      rateLimitTiers: { service: { requestsPerSec: 0 } },
    });
  });
  after(async () => {
    if (down) await setDatabaseReachable(t.db.url, true);
    await t?.close();
  });

  it("serves known keys from leased credit while the database is down, sheds a spent lease with 429 + Retry-After, and loses nothing", async () => {
    const accounts = t.coordinator.ledger.accounts;
    const ids: Record<Sent["account"], string> = {
      light1: t.accountId,
      light2: (await accounts.createAccount({ name: "light2", tier: "service", initialCreditMicroUsd: 50_000_000n }))
        .id,
      heavy: (await accounts.createAccount({ name: "heavy", tier: "service", initialCreditMicroUsd: 50_000_000n })).id,
    };
    // Two keys per account; clients 0-2 on light1, 3-5 on light2, 6-7 on heavy.
    const keys: Record<Sent["account"], string[]> = { light1: [t.apiKey], light2: [], heavy: [] };
    keys.light1.push((await accounts.issueApiKey({ accountId: ids.light1 })).apiKey);
    for (const a of ["light2", "heavy"] as const)
      for (let i = 0; i < 2; i++) keys[a].push((await accounts.issueApiKey({ accountId: ids[a] })).apiKey);
    const clients: { account: Sent["account"]; key: string }[] = [
      ...[0, 1, 0].map((i) => ({ account: "light1" as const, key: keys.light1[i]! })),
      ...[0, 1, 1].map((i) => ({ account: "light2" as const, key: keys.light2[i]! })),
      ...[0, 1].map((i) => ({ account: "heavy" as const, key: keys.heavy[i]! })),
    ];
    // A key revoked through this process just before the outage must stay revoked during it.
    const revoked = await accounts.issueApiKey({ accountId: ids.light1 });
    const ask = (key: string, maxTokens: number) =>
      postJson(`${t.apiBase}/chat/completions`, key, {
        model: "gpt-oss-20b",
        max_tokens: maxTokens,
        messages: [{ role: "user", content: "hi" }],
      });
    assert.equal((await ask(revoked.apiKey, 4)).status, 200);
    await accounts.revokeApiKey(revoked.keyId);

    const t0 = performance.now();
    const now = () => performance.now() - t0;
    const sent: Sent[] = [];
    let stop = false;
    const loops = clients.map(async ({ account, key }, client) => {
      while (!stop) {
        const startMs = now();
        const r = await ask(key, account === "heavy" ? 4_000 : 4);
        const code = r.status === 200 ? undefined : (JSON.parse(r.text) as { error?: { code?: string } }).error?.code;
        sent.push({
          client,
          account,
          startMs,
          endMs: now(),
          status: r.status,
          code,
          retryAfter: r.headers.get("retry-after"),
          requestId: r.headers.get("x-request-id"),
        });
        // A well-behaved client: honours Retry-After, and paces itself a little otherwise (2 cores shared with
        // PostgreSQL and the Macs).
        await new Promise((res) =>
          setTimeout(res, r.status === 429 ? Number(r.headers.get("retry-after") ?? 1) * 1000 : 15),
        );
      }
    });

    // Warm: every key verified, every account holding a lease.
    await new Promise((r) => setTimeout(r, 2_000));
    await setDatabaseReachable(t.db.url, false);
    down = true;
    const cutMs = now();
    const probes: Record<string, number> = {};
    await new Promise((r) => setTimeout(r, OUTAGE_MS / 2));
    const degraded = t.coordinator.ledger.status();
    probes["revoked key"] = (await ask(revoked.apiKey, 4)).status;
    const unknown = await ask(`sk-never-issued-${"z".repeat(20)}`, 4);
    probes["never-seen key"] = unknown.status;
    await new Promise((r) => setTimeout(r, OUTAGE_MS / 2));
    const backMs = now();
    await setDatabaseReachable(t.db.url, true);
    down = false;
    // Long enough for the heavy clients to come back after their Retry-After and draw a new lease.
    await new Promise((r) => setTimeout(r, 4_000));
    stop = true;
    await Promise.all(loops);

    const inOutage = sent.filter((s) => s.startMs >= cutMs && s.endMs <= backMs);
    const late = inOutage.filter((s) => s.startMs >= cutMs + KEY_TTL_MS + 1_000);
    const tally = (xs: Sent[]) => {
      const m: Record<string, number> = {};
      for (const x of xs) m[`${x.account} ${x.status}`] = (m[`${x.account} ${x.status}`] ?? 0) + 1;
      return m;
    };
    console.log(
      `      ${sent.length} requests; during the ${((backMs - cutMs) / 1000).toFixed(1)} s outage: ${JSON.stringify(tally(inOutage))}`,
    );
    console.log(
      `      more than ${KEY_TTL_MS / 1000 + 1} s into it: ${JSON.stringify(tally(late))}; ledger mid-outage ${JSON.stringify(degraded)}; probes ${JSON.stringify(probes)}`,
    );

    // Nothing but 200 and 429 from the ledger, at any point.
    const odd = sent.filter(
      (s) => s.status !== 200 && !(s.status === 429 && s.code === "rate_limit_exceeded" && Number(s.retryAfter) >= 1),
    );
    assert.deepEqual(odd, [], "every answer is a 200, or a 429 rate_limit_exceeded with Retry-After");
    assert.ok(degraded.degraded, "the ledger knew the database was down");

    // Known keys served from the lease, also once the old 5 s key cache would have expired.
    for (const account of ["light1", "light2"] as const) {
      const served = late.filter((s) => s.account === account && s.status === 200).length;
      assert.ok(
        served >= 10,
        `${account}: ${served} requests served more than ${KEY_TTL_MS / 1000 + 1} s into the outage`,
      );
      assert.equal(
        inOutage.filter((s) => s.account === account && s.status !== 200).length,
        0,
        `${account}'s lease lasts the outage`,
      );
    }
    // The heavy account spends its lease, then is shed with 429 + Retry-After until the database is back ...
    assert.ok(
      inOutage.some((s) => s.account === "heavy" && s.status === 200),
      "heavy: served from its lease at first",
    );
    assert.ok(
      inOutage.some((s) => s.account === "heavy" && s.status === 429),
      "heavy: shed once its lease was spent",
    );
    // ... and served again afterwards.
    assert.ok(
      sent.some((s) => s.account === "heavy" && s.status === 200 && s.startMs > backMs),
      "heavy: served again once the database is back",
    );

    // A revoked key stays revoked; a key never verified cannot be vouched for (503 + Retry-After, not 500).
    assert.ok([401, 503].includes(probes["revoked key"]!), `revoked key during the outage: ${probes["revoked key"]}`);
    assert.equal(unknown.status, 503, unknown.text);
    assert.ok(Number(unknown.headers.get("retry-after")) >= 1);

    // Nothing lost: every 200 settled exactly once, nothing refused is charged, and the books balance.
    await t.coordinator.ledger.flush();
    assert.deepEqual(await verifyLedger(t.db.db), { ok: true, violations: [], quarantined: [] });
    const { rows } = await sql<{ request_id: string; state: string; debits: bigint }>`
      SELECT r.request_id, r.state, (SELECT count(*) FROM ledger_entries e WHERE e.request_id = r.request_id AND e.kind = 'debit')::int8 AS debits
      FROM ledger_requests r WHERE r.account_id IN (${sql.join(Object.values(ids))})`.execute(t.db.db);
    const byId = new Map(rows.map((r) => [r.request_id, r]));
    const ok = sent.filter((s) => s.status === 200);
    for (const s of ok) {
      const row = byId.get(s.requestId!);
      assert.equal(row?.state, "settled", `${s.requestId} (${s.account}, ${s.status}) settled`);
      assert.equal(row?.debits, 1n, `${s.requestId} debited once`);
    }
    for (const s of sent.filter((x) => x.status === 429))
      assert.notEqual(byId.get(s.requestId!)?.state, "settled", `${s.requestId} was refused, not charged`);
    assert.equal(
      rows.filter((r) => r.state === "settled").length,
      ok.length + 1,
      "settled rows = the 200s (+ the revoked key's one request)",
    );
  });
});
