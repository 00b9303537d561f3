/**
 * Issue 5 §3 with the whole coordinator: `coordinator serve` as a child process, simulated Macs over gRPC and
 * streaming consumers, `kill -9` mid-load, restart on the same database, recovery, `coordinator ledger verify`.
 * Guarantees: every reservation ends resolved, nothing is charged twice, what was charged is exactly the usage
 * the client was shown, the balance is conserved, and the restarted coordinator serves again.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { sql, type Kysely } from "kysely";
import { chipProfiles } from "../../../src/tools/fleet/chip-profiles.js";
import { SimulatedMac } from "../../../src/tools/fleet/simulated-mac.js";
import { createKysely } from "../../../src/ledger/database.js";
import type { Database } from "../../../src/ledger/schema.js";
import {
  adminCall,
  freePorts,
  provisionOverAdmin,
  runCoordinatorCli,
  startCoordinatorProcess,
  type CoordinatorProcess,
} from "../../support/coordinator-process.js";
import { eventually, sseData } from "../../support/http.js";
import { createTestDatabase, type TestDatabase } from "../../support/postgres.js";

const CREDIT = 100_000_000n;
const WORKERS = 32;
/**
 * Both processes presume a silent ledger process dead after 5 s (default 60 s), so recovery fits the test; a
 * deep queue keeps the scheduler's queue limit (a 429 of its own) out of a test about the ledger.
 */
const env = { LEDGER_HOLDER_STALE_MS: "5000", QUEUE_LIMIT: "200" };

interface Sent {
  requestId: string | undefined;
  done: boolean;
  usage?: { prompt_tokens: number; completion_tokens: number };
}

function serviceCost(u: { prompt_tokens: number; completion_tokens: number }): bigint {
  const ceil = (a: bigint) => (a + 999_999n) / 1_000_000n;
  const raw = ceil(BigInt(u.prompt_tokens) * 50_000n) + ceil(BigInt(u.completion_tokens) * 200_000n);
  return raw === 0n ? 0n : raw < 1n ? 1n : raw;
}

describe("coordinator crash safety (kill -9 of `coordinator serve` under streaming load)", function () {
  this.timeout(60_000);
  let testDb: TestDatabase;
  let db: Kysely<Database>;
  const procs: CoordinatorProcess[] = [];
  const macs: SimulatedMac[] = [];

  before(async () => {
    testDb = await createTestDatabase();
  });
  after(async () => {
    await Promise.all(macs.map((m) => m.stop()));
    for (const p of procs) await p.kill9();
    await db?.destroy();
    await testDb?.close();
  });

  it("resolves every reservation after kill -9 and restart, charges nothing twice, and `ledger verify` exits 0", async () => {
    const [httpPort, grpcPort] = (await freePorts(2)) as [number, number];
    const adminKey = `admin-${randomBytes(12).toString("hex")}`;
    const start = async () => {
      const p = await startCoordinatorProcess({ databaseUrl: testDb.url, httpPort, grpcPort, adminKey, env });
      procs.push(p);
      return p;
    };
    const t0 = performance.now();
    const mark = (what: string) => marks.push(`${what} ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const marks: string[] = [];
    const first = await start();
    mark("up");
    const base = first.baseUrl;

    type Account = { account: { id: string; balanceMicroUsd: string } };
    // An aggregator's one service account and key carry all the traffic.
    const {
      accountId,
      apiKey,
      providerToken: token,
    } = await provisionOverAdmin(base, adminKey, { tier: "ACCOUNT_TIER_SERVICE", creditMicroUsd: CREDIT });

    // Four Macs at 20× simulated speed: a 150-300 token answer streams for a few hundred ms, so dozens are mid-stream
    // (reserved, not settled) at any moment. They reconnect on their own after the crash.
    for (let i = 0; i < 4; i++) {
      const mac = new SimulatedMac({
        coordinator: `127.0.0.1:${grpcPort}`,
        token,
        serial: `CRASH-${process.pid}-${i}`,
        chip: chipProfiles.find((c) => c.memoryGb >= 64) ?? chipProfiles[chipProfiles.length - 1]!,
        models: ["gpt-oss-20b"],
        warmModels: ["gpt-oss-20b"],
        timeScale: 20,
        maxConcurrency: 16,
        naturalTokens: { min: 150, max: 300 },
        heartbeatIntervalMs: 500,
        reconnectBaseMs: 100,
        reconnectMaxMs: 500,
      });
      macs.push(mac);
      mac.start();
      await mac.ready();
    }

    const sent: Sent[] = [];
    let inFlight = 0;
    let stop = false;
    const one = async (i: number): Promise<Sent> => {
      const s: Sent = { requestId: undefined, done: false };
      try {
        const r = await fetch(`${base}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
          body: JSON.stringify({
            model: "gpt-oss-20b",
            stream: true,
            stream_options: { include_usage: true },
            max_tokens: 400,
            messages: [{ role: "user", content: `load ${i}` }],
          }),
        });
        s.requestId = r.headers.get("x-request-id") ?? undefined;
        const text = await r.text();
        assert.equal(r.status, 200, text);
        s.done = text.includes("data: [DONE]");
        const withUsage = sseData(text).find((e) => (e as { usage?: unknown })?.usage) as
          | { usage: Sent["usage"] }
          | undefined;
        if (withUsage?.usage) s.usage = withUsage.usage;
      } catch (e) {
        // Only the kill may interrupt a request (the socket dies mid-stream or before the response).
        if (!stop) throw e;
      }
      return s;
    };
    let n = 0;
    const workers = Array.from({ length: WORKERS }, async () => {
      while (!stop) {
        inFlight++;
        try {
          sent.push(await one(n++));
        } finally {
          inFlight--;
        }
      }
    });

    await eventually(
      () => sent.filter((s) => s.done).length >= 40 && inFlight >= WORKERS / 2,
      20_000,
      "load under way",
    );
    stop = true;
    await first.kill9();
    mark("killed");
    await Promise.all(workers);
    const completedBeforeKill = sent.filter((s) => s.done);
    const interrupted = sent.filter((s) => !s.done);
    assert.ok(interrupted.length >= WORKERS / 2, `${interrupted.length} requests were cut by the kill`);

    // Restart on the same database and ports; the Macs reconnect and the coordinator serves again.
    const second = await start();
    mark("restarted");
    await eventually(
      async () =>
        (await adminCall<{ providers?: unknown[] }>(base, adminKey, "ListProviders", {})).providers?.length === 4,
      10_000,
      "Macs reconnected",
    );
    const after = await Promise.all(Array.from({ length: 8 }, (_, i) => one(10_000 + i)));
    assert.ok(
      after.every((s) => s.done && s.requestId),
      "the restarted coordinator answers",
    );

    // Recovery of the killed process's holder (silent > 5 s) by the new process.
    db = createKysely(testDb.url, { poolSize: 2 });
    const open = async () => {
      const { rows } = await sql<{ reserved: bigint; leases: bigint }>`
        SELECT (SELECT count(*) FROM ledger_requests WHERE state = 'reserved')::int8 AS reserved,
               (SELECT count(*) FROM credit_leases l JOIN ledger_holders h ON h.id = l.holder_id
                 WHERE l.closed_at IS NULL AND h.closed_at IS NOT NULL)::int8 AS leases`.execute(db);
      return rows[0]!;
    };
    await eventually(
      async () => {
        const o = await open();
        return o.reserved === 0n && o.leases === 0n;
      },
      20_000,
      "every reservation and dead lease resolved",
    );
    mark("recovered");

    const verify = await runCoordinatorCli(["ledger", "verify", "--database-url", testDb.url], env);
    assert.equal(verify.code, 0, `ledger verify:\n${verify.stdout}${verify.stderr}`);
    assert.match(verify.stdout, /ledger verify: ok/);
    mark("verified");

    // Nothing charged twice; every request row resolved; what was charged is the usage the client saw.
    const { rows } = await sql<{
      request_id: string;
      state: string;
      release_reason: string | null;
      debit: bigint;
      debits: bigint;
    }>`
      SELECT r.request_id, r.state, r.release_reason, r.consumer_debit_micro_usd AS debit,
             (SELECT count(*) FROM ledger_entries e WHERE e.request_id = r.request_id AND e.kind = 'debit')::int8 AS debits
      FROM ledger_requests r WHERE r.account_id = ${accountId}`.execute(db);
    const byId = new Map(rows.map((r) => [r.request_id, r]));
    for (const r of rows) {
      assert.notEqual(r.state, "reserved", `${r.request_id} resolved`);
      assert.equal(
        r.debits,
        r.state === "settled" ? 1n : 0n,
        `${r.request_id}: one debit entry if settled, none otherwise`,
      );
    }
    const recovered = rows.filter((r) => r.release_reason === "recovered").length;
    assert.ok(recovered >= 1, "the kill left reservations that recovery released");
    // The consumer receives a stream's end only after its settlement is durable, so every stream that completed
    // before the kill is charged exactly its usage, and nothing else is.
    for (const s of [...completedBeforeKill, ...after]) {
      const row = byId.get(s.requestId!);
      assert.equal(row?.state, "settled", `${s.requestId} completed, so it is settled`);
      assert.equal(row!.debit, serviceCost(s.usage!), `${s.requestId} charged its usage`);
    }

    // Conservation: the balance moved by exactly the settled debits (read through the restarted coordinator).
    const charged = rows.filter((r) => r.state === "settled").reduce((a, r) => a + r.debit, 0n);
    const acct = await adminCall<Account>(base, adminKey, "GetAccount", { accountId: accountId });
    assert.equal(BigInt(acct.account.balanceMicroUsd), CREDIT - charged);
    console.log(
      `      crash: ${completedBeforeKill.length} completed (all billed) + ${interrupted.length} cut by kill -9; ` +
        `${rows.length} ledger rows, ${recovered} released by recovery, ${rows.filter((r) => r.state === "settled").length} settled, ${charged} µUSD charged; ${marks.join(", ")}`,
    );

    assert.equal(await second.stop(), 0, `graceful shutdown:\n${second.output()}`);
  });
});
