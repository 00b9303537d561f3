/**
 * Ledger benchmark: one account, N concurrent workers doing reserve → settle cycles for `durationMs`, against
 * real Postgres, side by side in one run:
 * - `leased`: this repo's ledger (credit leases + group commit);
 * - `naive`: the Go coordinator's pattern from the load-test report: a transaction with
 *   `UPDATE balances SET balance = balance - $2 WHERE account_id = $1 AND balance >= $2` plus an entry insert,
 *   under a short lock/statement timeout, and the settle refund done the same way.
 *
 * Run: `node --import tsx bench/ledger/ledger-bench.ts` (scratch database; or BENCH_DATABASE_URL=... as the
 * admin URL of the server to create it on). Env: BENCH_DURATION_MS (default 5000), BENCH_CONCURRENCY (64,256).
 */
import { randomBytes } from "node:crypto";
import { pathToFileURL } from "node:url";
import pg from "pg";
import { createKysely, migrateToLatest } from "../../src/ledger/database.js";
import { createPostgresLedger } from "../../src/ledger/postgres-ledger.js";
import { verifyLedger } from "../../src/ledger/verify-ledger.js";
import { makeTempClusterDir, startEmbeddedPostgres } from "../../src/ledger/embedded-postgres-server.js";

export interface BenchRow {
  system: "leased" | "naive";
  concurrency: number;
  ok: number;
  errors: number;
  throughputPerS: number;
  p50Ms: number;
  p99Ms: number;
}

export interface LedgerBenchResult {
  rows: BenchRow[];
  /** leased ok-throughput / naive ok-throughput per concurrency. */
  ratios: Record<number, number>;
  markdown: string;
  verifyOk: boolean;
}

const pct = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : 0;

async function drive(concurrency: number, durationMs: number, cycle: (worker: number) => Promise<boolean>) {
  const lat: number[] = [];
  let ok = 0;
  let errors = 0;
  const end = performance.now() + durationMs;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (performance.now() < end) {
        const t = performance.now();
        let good = false;
        try {
          good = await cycle(w);
        } catch {
          good = false;
        }
        lat.push(performance.now() - t);
        if (good) ok++;
        else errors++;
      }
    }),
  );
  const elapsedS = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  return { ok, errors, throughputPerS: ok / elapsedS, p50Ms: pct(lat, 50), p99Ms: pct(lat, 99) };
}

/** The naive baseline: one hot balance row, one transaction per reserve and per settle, short timeouts. */
async function naiveCycle(pool: pg.Pool, account: string, id: string): Promise<boolean> {
  const tx = async (fn: (c: pg.PoolClient) => Promise<boolean>) => {
    const c = await pool.connect();
    try {
      await c.query("BEGIN");
      const r = await fn(c);
      await c.query(r ? "COMMIT" : "ROLLBACK");
      return r;
    } catch (e) {
      await c.query("ROLLBACK").catch(() => {});
      throw e;
    } finally {
      c.release();
    }
  };
  const reserved = 300;
  const ok = await tx(async (c) => {
    const r = await c.query("UPDATE balances SET balance = balance - $2 WHERE account_id = $1 AND balance >= $2", [
      account,
      reserved,
    ]);
    if (r.rowCount !== 1) return false;
    await c.query("INSERT INTO naive_entries (account_id, kind, amount, reference) VALUES ($1, 'reserve', $2, $3)", [
      account,
      -reserved,
      id,
    ]);
    return true;
  });
  if (!ok) return false;
  const refund = 100;
  return tx(async (c) => {
    await c.query("UPDATE balances SET balance = balance + $2 WHERE account_id = $1", [account, refund]);
    await c.query("INSERT INTO naive_entries (account_id, kind, amount, reference) VALUES ($1, 'refund', $2, $3)", [
      account,
      refund,
      id,
    ]);
    return true;
  });
}

export async function runLedgerBench(options: {
  url: string;
  concurrency: number[];
  durationMs: number;
  poolSize?: number;
}): Promise<LedgerBenchResult> {
  const poolSize = options.poolSize ?? 80; // the Go coordinator's MaxConns
  const rows: BenchRow[] = [];
  const db = createKysely(options.url, { poolSize: 10 });
  await migrateToLatest(db);
  const naivePool = new pg.Pool({
    connectionString: options.url,
    max: poolSize,
    // The report's pattern: a short timeout around the debit; lock waits count against it.
    statement_timeout: 1_000,
    lock_timeout: 1_000,
    connectionTimeoutMillis: 1_000,
  });
  naivePool.on("error", () => {});
  await naivePool.query(`CREATE TABLE IF NOT EXISTS balances (account_id text PRIMARY KEY, balance bigint NOT NULL);
    CREATE TABLE IF NOT EXISTS naive_entries (id bigserial PRIMARY KEY, account_id text, kind text, amount bigint, reference text, created_at timestamptz DEFAULT now())`);
  const pl = await createPostgresLedger({
    db,
    defaultPrices: { bench: { inputMicroUsdPerMtok: 100_000, outputMicroUsdPerMtok: 400_000 } },
    leaseMicroUsd: 5_000_000n,
  });
  try {
    const provider = (await pl.accounts.createAccount({ name: "provider", tier: "service" })).id;
    for (const concurrency of options.concurrency) {
      const acct = await pl.accounts.createAccount({
        name: `bench-${concurrency}`,
        tier: "service",
        initialCreditMicroUsd: 1_000_000_000_000n,
      });
      const { keyId } = await pl.accounts.issueApiKey({ accountId: acct.id });
      let n = 0;
      const leased = await drive(concurrency, options.durationMs, async () => {
        const requestId = `b${concurrency}-${++n}`;
        const r = await pl.ledger.reserve({
          requestId,
          accountId: acct.id,
          keyId,
          model: "bench",
          promptTokensUpperBound: 1000,
          maxOutputTokens: 500,
        });
        if (!r.ok) return false;
        await pl.ledger.settle({
          requestId,
          providerId: "p",
          providerAccountId: provider,
          model: "bench",
          usage: { promptTokens: 800, completionTokens: 200, reasoningTokens: 0 },
        });
        return true;
      });
      rows.push({ system: "leased", concurrency, ...leased });
      await pl.flush();

      const naiveAccount = `naive-${concurrency}`;
      await naivePool.query(
        "INSERT INTO balances VALUES ($1, $2) ON CONFLICT (account_id) DO UPDATE SET balance = excluded.balance",
        [naiveAccount, 1_000_000_000_000],
      );
      let m = 0;
      const naive = await drive(concurrency, options.durationMs, () =>
        naiveCycle(naivePool, naiveAccount, `n${concurrency}-${++m}`),
      );
      rows.push({ system: "naive", concurrency, ...naive });
    }
    const verify = await verifyLedger(db);
    const ratios: Record<number, number> = {};
    for (const c of options.concurrency) {
      const l = rows.find((r) => r.system === "leased" && r.concurrency === c)!;
      const nv = rows.find((r) => r.system === "naive" && r.concurrency === c)!;
      ratios[c] = nv.throughputPerS > 0 ? l.throughputPerS / nv.throughputPerS : Infinity;
    }
    const lines = [
      "| system | concurrency | ok cycles | errors | ok cycles/s | p50 ms | p99 ms | leased/naive |",
      "|---|---|---|---|---|---|---|---|",
      ...rows.map(
        (r) =>
          `| ${r.system} | ${r.concurrency} | ${r.ok} | ${r.errors} | ${r.throughputPerS.toFixed(0)} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} | ${r.system === "leased" ? `${ratios[r.concurrency]!.toFixed(1)}×` : ""} |`,
      ),
    ];
    return { rows, ratios, markdown: lines.join("\n"), verifyOk: verify.ok };
  } finally {
    await pl.close();
    await naivePool.end();
    await db.destroy();
  }
}

async function main(): Promise<void> {
  const durationMs = Number(process.env.BENCH_DURATION_MS ?? 5000);
  const concurrency = (process.env.BENCH_CONCURRENCY ?? "64,256").split(",").map(Number);
  const adminUrl = process.env.BENCH_DATABASE_URL;
  const server = adminUrl
    ? undefined
    : await startEmbeddedPostgres({ databaseDir: await makeTempClusterDir("ledger-bench-"), ephemeral: true });
  const base = adminUrl ?? server!.urlFor("postgres");
  const name = `ledger_bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  const u = new URL(base);
  u.pathname = `/${name}`;
  try {
    const result = await runLedgerBench({ url: u.toString(), concurrency, durationMs });
    console.log(
      `ledger bench: one account, reserve+settle cycles, ${durationMs} ms per cell, server ${adminUrl ? "BENCH_DATABASE_URL" : "embedded PostgreSQL 17"}\n`,
    );
    console.log(result.markdown);
    console.log(`\nverifyLedger: ${result.verifyOk ? "ok" : "VIOLATIONS"}`);
    process.exitCode = result.verifyOk ? 0 : 1;
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
    await server?.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
