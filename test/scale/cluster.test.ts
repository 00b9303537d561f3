/**
 * Issue 17's failure suite: three `coordinator serve --cluster` processes on one PostgreSQL database (behind an
 * outage proxy) and a private nats-server, 300 simulated Macs spread over the three gRPC ports (each moves to the
 * next coordinator when its stream breaks), and streaming consumers spread over the three HTTP ports.
 *
 * Scenarios, in order, each under load: steady; `kill -9` of one coordinator (then restarted); SIGSTOP of one for
 * 10 s, then SIGCONT; a NATS restart; a 5 s PostgreSQL outage; shared rate limits under balanced and unbalanced
 * load. What must hold (design brief ../shared/reference/scale-out.md §4-§6):
 * - Macs of a dead or frozen coordinator are registered elsewhere within 15 s, and every node's view lists each
 *   Mac once;
 * - a request at a surviving coordinator ends well unless it had already shown content (pre-content failures
 *   are retried invisibly on another Mac);
 * - no request id runs on two Macs at once, nor more often than its attempts (the fleet's execution log;
 *   speculative backups are off: SPECULATIVE_FRACTION=0);
 * - every reservation and lease of a dead ledger holder is resolved after LEDGER_HOLDER_STALE_MS, and
 *   `coordinator ledger verify` is clean;
 * - requests admitted per window never exceed an account's limit, and one node taking all of an account's load
 *   is not under-admitted by more than 10 % (RATE_LIMIT_STORE=postgres).
 *
 * Not part of `npm test` (a fresh laptop has no nats-server): `npm run test:scale`.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { checkExecutionLog, describeViolations, type ExecutionViolation } from "../../src/tools/fleet/execution-log.js";
import { startFleet, type Fleet } from "../../src/tools/fleet/fleet.js";
import type { ExecutionEntry } from "../../src/tools/fleet/simulated-mac.js";
import {
  adminCall,
  freePorts,
  provisionOverAdmin,
  runCoordinatorCli,
  startCoordinatorProcess,
  type CoordinatorProcess,
} from "../support/coordinator-process.js";
import { eventually } from "../support/http.js";
import {
  countOutcomes,
  quantile,
  startLoad,
  summarizeLoad,
  type LoadDriverOptions,
  type LoadRecord,
  type OutcomeClass,
} from "../support/load-driver.js";
import { startNatsServer, type NatsServer } from "../support/nats-server.js";
import { startPgOutageProxy, type PgOutageProxy } from "../support/pg-outage-proxy.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";

const NODES = 3;
const MACS = 300;
const MODEL = "gpt-oss-20b";
/** Consumers and their pause between requests: ~100 requests/s in all, modest for 2 shared cores. */
const CONSUMERS = 24;
const THINK_MS = 100;
const MAX_TOKENS = 48;
/** The bound the design promises for re-homing every Mac of a dead coordinator. */
const REHOME_BOUND_MS = 15_000;
/** A ledger holder silent this long is presumed dead (shorter than the SIGSTOP, longer than the PG outage). */
const HOLDER_STALE_MS = 8_000;
/** Provider attempts per request (the coordinator's MAX_DISPATCH_ATTEMPTS default). */
const MAX_ATTEMPTS = 6;
const CREDIT = 100_000_000_000n;

const nodeEnv = (prefix: string, i: number): Record<string, string> => ({
  CLUSTER_PREFIX: prefix,
  NODE_ID: `n${i}`,
  LEDGER_HOLDER_STALE_MS: String(HOLDER_STALE_MS),
  // No speculative backups: a request runs on one Mac at a time, which the execution log checks.
  SPECULATIVE_FRACTION: "0",
  QUEUE_LIMIT: "500",
  HEARTBEAT_INTERVAL_MS: "2000",
  GRPC_KEEPALIVE_MS: "2000",
  RATE_LIMIT_STORE: "postgres",
});

describe("scale: three coordinators on PostgreSQL + NATS under failures", function () {
  this.timeout(600_000);
  let nats: NatsServer;
  let testDb: TestDatabase;
  let proxy: PgOutageProxy;
  let db: pg.Pool;
  let fleet: Fleet;
  const procs: (CoordinatorProcess | undefined)[] = [];
  let httpPorts: number[];
  let grpcPorts: number[];
  let adminKey: string;
  let apiKey: string;
  let providerToken: string;
  const prefix = `scale_${randomBytes(4).toString("hex")}`;
  const execLog: ExecutionEntry[] = [];
  /** Last registration time of each Mac, by serial. */
  const registeredAt = new Map<string, number>();
  const timings: string[] = [];
  /** Every broken Mac stream: why, to explain slow re-homes. */
  const disconnects: { serial: string; atMs: number; why: string }[] = [];

  const grpcAddress = (i: number) => `127.0.0.1:${grpcPorts[i]}`;
  const baseUrl = (i: number) => `http://127.0.0.1:${httpPorts[i]}`;
  const baseUrls = () => Array.from({ length: NODES }, (_, i) => baseUrl(i));
  const nodeOfAddress = (a: string) => grpcPorts.findIndex((p) => a.endsWith(`:${p}`));

  const startNode = async (i: number) => {
    procs[i] = await startCoordinatorProcess({
      databaseUrl: proxy.urlFor(testDb.url),
      httpPort: httpPorts[i]!,
      grpcPort: grpcPorts[i]!,
      adminKey,
      env: nodeEnv(prefix, i),
      args: ["--cluster", nats.url],
      readyTimeoutMs: 30_000,
    });
  };

  const load = (o: Partial<LoadDriverOptions> = {}) =>
    startLoad({
      baseUrls: baseUrls(),
      apiKey,
      concurrency: CONSUMERS,
      model: MODEL,
      maxTokens: MAX_TOKENS,
      thinkMs: THINK_MS,
      requestTimeoutMs: 60_000,
      ...o,
    });

  /** Runs load for `ms`, calling `during` `atMs` in; resolves with the records and the disruption's time. */
  const underLoad = async (
    ms: number,
    atMs: number,
    during: () => Promise<void>,
  ): Promise<{ records: LoadRecord[]; at: number }> => {
    const run = load();
    await sleep(atMs);
    const at = Date.now();
    await during();
    await sleep(Math.max(0, ms - (Date.now() - at) - atMs));
    return { records: await run.stop(), at };
  };

  const registeredCount = () => [...fleet.connectedBy().values()].reduce((a, b) => a + b, 0);

  /** Distinct and total providers in one node's registry (its own Macs and its mirrors of the others'). */
  const nodeView = async (i: number) => {
    const { providers = [] } = await adminCall<{ providers?: { serial: string }[] }>(
      baseUrl(i),
      adminKey,
      "ListProviders",
      {},
    );
    return { total: providers.length, distinct: new Set(providers.map((p) => p.serial)).size };
  };
  const viewsConverged = async (nodes: number[]) => {
    for (const i of nodes) {
      const v = await nodeView(i);
      if (v.total !== MACS || v.distinct !== MACS) return false;
    }
    return true;
  };

  /** Moves Macs (with no load running) until every node holds about a third of them. */
  const rebalance = async () => {
    const target = MACS / NODES;
    for (let round = 0; round < 6; round++) {
      await eventually(() => registeredCount() === MACS, 30_000, "every Mac registered");
      const counts = fleet.connectedBy();
      if ([...counts.values()].every((c) => Math.abs(c - target) <= 3)) return;
      for (const [address, c] of counts) {
        if (c <= target + 3) continue;
        // A dropped Mac reconnects to the next address in rotation.
        for (const m of fleet.macs
          .filter((x) => x.state === "registered" && x.address === address)
          .slice(0, c - target))
          m.dropConnection();
      }
      await sleep(1500);
    }
    throw new Error(`could not rebalance: ${JSON.stringify(Object.fromEntries(fleet.connectedBy()))}`);
  };

  const ledgerOpen = async () => {
    const { rows } = await db.query<{ reserved: number; dead_leases: number; stale_holders: number }>(
      `SELECT (SELECT count(*) FROM ledger_requests WHERE state = 'reserved')::int AS reserved,
              (SELECT count(*) FROM credit_leases l JOIN ledger_holders h ON h.id = l.holder_id
                WHERE l.closed_at IS NULL
                  AND (h.closed_at IS NOT NULL OR h.heartbeat_at < now() - make_interval(secs => $1)))::int AS dead_leases,
              (SELECT count(*) FROM ledger_holders
                WHERE closed_at IS NULL AND heartbeat_at < now() - make_interval(secs => $1))::int AS stale_holders`,
      [HOLDER_STALE_MS / 1000],
    );
    return rows[0]!;
  };
  /** Waits until nothing is reserved and no dead holder keeps a lease; resolves with how long that took. */
  const ledgerSettles = async (sinceMs: number, what: string) => {
    await eventually(
      async () => {
        const o = await ledgerOpen();
        return o.reserved === 0 && o.dead_leases === 0 && o.stale_holders === 0;
      },
      HOLDER_STALE_MS + 30_000,
      `${what}: every reservation and dead holder's lease resolved (${JSON.stringify(await ledgerOpen())})`,
    );
    return Date.now() - sinceMs;
  };
  const ledgerVerify = async () => {
    const v = await runCoordinatorCli(["ledger", "verify", "--database-url", testDb.url]);
    assert.equal(v.code, 0, `ledger verify:\n${v.stdout}${v.stderr}`);
    assert.match(v.stdout, /ledger verify: ok/);
  };

  /** Violations among the requests that started running at or after `sinceMs` (one scenario's). */
  const execViolations = (sinceMs: number): ExecutionViolation[] => {
    const ids = new Set(execLog.filter((e) => e.startMs >= sinceMs).map((e) => e.requestId));
    return checkExecutionLog(
      execLog.filter((e) => ids.has(e.requestId)),
      { maxRunsPerRequest: MAX_ATTEMPTS },
    );
  };
  const assertExecLogClean = (sinceMs: number, records: LoadRecord[] = []) => {
    const v = execViolations(sinceMs);
    const nodes = Array.from({ length: NODES }, (_, i) => `n${i}=${grpcAddress(i)}`).join(" ");
    if (v.length > 0) {
      // Where the consumer sent each doubled request, for whoever investigates.
      const byId = new Map(records.map((r) => [r.requestId, r]));
      const seen = v.map((x) => {
        const r = byId.get(x.requestId);
        return `${x.requestId} at n${r ? baseUrls().indexOf(r.url) : "?"} (started ${r?.startMs ?? "?"}, statuses ${r?.tryStatuses.join(",") ?? "?"})`;
      });
      timings.push(`execution log violations (${nodes}): ${describeViolations(v)}; sent at: ${seen.join(", ")}`);
    }
    assert.equal(v.length, 0, `execution log (${nodes}):\n${describeViolations(v)}`);
  };
  /** Request ids (of these records) that ran on more than one Mac: invisible retries. */
  const retriedInvisibly = (records: LoadRecord[]) => {
    const ids = new Set(records.map((r) => r.requestId).filter((x) => x !== undefined));
    const runs = new Map<string, number>();
    for (const e of execLog)
      if (ids.has(e.requestId) && e.outcome !== "rejected") runs.set(e.requestId, (runs.get(e.requestId) ?? 0) + 1);
    return [...runs.values()].filter((n) => n > 1).length;
  };
  /** Records whose request ran on a Mac owned by another node than the one the consumer reached. */
  const forwarded = (records: LoadRecord[]) => {
    const nodeOf = new Map(records.map((r) => [r.requestId, baseUrls().indexOf(r.url)]));
    return execLog.filter(
      (e) =>
        e.outcome === "completed" &&
        nodeOf.has(e.requestId) &&
        nodeOf.get(e.requestId) !== nodeOfAddress(e.coordinator),
    ).length;
  };
  const only = (records: LoadRecord[], allowed: OutcomeClass[], what: string) => {
    const bad = records.filter((r) => !allowed.includes(r.outcome));
    assert.equal(
      bad.length,
      0,
      `${what}: ${bad.length} requests ended ${[...new Set(bad.map((r) => r.outcome))].join("/")}, e.g. ${bad
        .slice(0, 3)
        .map(
          (r) =>
            `[node ${r.firstNode}->${r.node} statuses ${r.tryStatuses.join(",") || "-"} codes ${r.tryErrorCodes.join(",") || "-"} ${r.error}]`,
        )
        .join(" ")}`,
    );
  };
  /** Serials of the Macs registered at `address` now. */
  const macsAt = (address: string) =>
    fleet.macs.filter((m) => m.state === "registered" && m.address === address).map((m) => m.serial);
  /** Re-home times (ms after `sinceMs`) of `moving`, the Macs that were at `address`. */
  const rehome = async (address: string, moving: string[], sinceMs: number, what: string) => {
    await eventually(
      () => (fleet.connectedBy().get(address) ?? 0) === 0 && registeredCount() === MACS,
      REHOME_BOUND_MS + 5_000,
      `${what}: every Mac re-homed (${JSON.stringify(Object.fromEntries(fleet.connectedBy()))})`,
    );
    const times = moving.map((s) => {
      const t = registeredAt.get(s);
      return t !== undefined && t >= sinceMs ? t - sinceMs : Number.POSITIVE_INFINITY;
    });
    const p = (q: number) => quantile(times, q)!;
    const set = new Set(moving);
    const why = new Map<string, number>();
    for (const d of disconnects) if (set.has(d.serial) && d.atMs >= sinceMs) why.set(d.why, (why.get(d.why) ?? 0) + 1);
    timings.push(
      `${what}: ${moving.length} Macs re-homed p50 ${p(0.5)} ms, p95 ${p(0.95)} ms, max ${p(1)} ms; ` +
        `stream ends on the way: ${JSON.stringify(Object.fromEntries(why))}`,
    );
    assert.ok(p(1) <= REHOME_BOUND_MS, `${what}: slowest re-home ${p(1)} ms`);
    return times;
  };

  before(async () => {
    const t0 = Date.now();
    nats = await startNatsServer({ pingIntervalS: 2, pingMax: 2 });
    testDb = await createTestDatabase();
    proxy = await startPgOutageProxy({
      target: { host: new URL(testDb.url).hostname, port: Number(new URL(testDb.url).port || 5432) },
    });
    db = new pg.Pool({ connectionString: testDb.url, max: 2 });
    // pg-pool's end() resolves once its clients are told to end, before their backends have read the Terminate:
    // the DROP DATABASE … WITH (FORCE) that follows in after() can still kill one, and the error it sends lands on
    // the pool, which with no listener throws it as an uncaught exception (it failed CI once). An idle client's
    // lost backend is nothing to report here; a query's own failure still rejects that query.
    db.on("error", () => {});
    const ports = await freePorts(2 * NODES);
    httpPorts = ports.slice(0, NODES);
    grpcPorts = ports.slice(NODES);
    adminKey = `admin-${randomBytes(12).toString("hex")}`;
    // The first node migrates the database; the others start on it.
    for (let i = 0; i < NODES; i++) await startNode(i);
    ({ apiKey, providerToken } = await provisionOverAdmin(baseUrl(0), adminKey, {
      tier: "ACCOUNT_TIER_SERVICE",
      creditMicroUsd: CREDIT,
    }));
    fleet = await startFleet({
      coordinator: Array.from({ length: NODES }, (_, i) => grpcAddress(i)),
      token: providerToken,
      count: MACS,
      models: [MODEL],
      timeScale: 20,
      warm: true,
      seed: 17,
      reconnectMaxMs: 1_000,
      onExecution: (e) => execLog.push(e),
      macDefaults: {
        // A frozen coordinator is noticed in ~5 s (the server allows pings every 1 s; a 1 s ack deadline cut
        // healthy streams when this process lagged on a shared 2-core box); one that accepts TCP but never
        // registers the Mac is left after 10 s (registering 300 Macs at once on 2 busy cores takes seconds).
        keepaliveTimeMs: 2_000,
        keepaliveTimeoutMs: 3_000,
        registerTimeoutMs: 10_000,
        reconnectBaseMs: 200,
        naturalTokens: { min: 20, max: 60 },
      },
    });
    for (const m of fleet.macs) {
      m.on("registered", () => registeredAt.set(m.serial, Date.now()));
      m.on("disconnected", (st: { code: number; details: string }) =>
        disconnects.push({ serial: m.serial, atMs: Date.now(), why: `${st.code} ${st.details}`.slice(0, 80) }),
      );
    }
    await fleet.ready();
    await rebalance();
    await eventually(() => viewsConverged([0, 1, 2]), 30_000, "every node lists all 300 Macs");
    timings.push(`cluster up (3 nodes, ${MACS} Macs, views converged) in ${Date.now() - t0} ms`);
  });

  after(async () => {
    for (const p of procs) p?.resume();
    await fleet?.stop();
    for (const p of procs) await p?.kill9();
    await db?.end();
    await proxy?.close();
    await testDb?.close();
    await nats?.close();
    console.log(`      scale timings:\n        ${timings.join("\n        ")}`);
  });

  // Each scenario starts from a whole cluster, whatever the previous one left: every node up, NATS up, the
  // Macs spread evenly, every view complete.
  let scenarioStart = 0;
  beforeEach(async () => {
    if (!nats.running) await nats.start();
    for (let i = 0; i < NODES; i++) {
      procs[i]?.resume();
      if (!procs[i]?.running) await startNode(i);
    }
    if (proxy.down) await eventually(() => !proxy.down, 10_000, "PostgreSQL back");
    await rebalance();
    await eventually(() => viewsConverged([0, 1, 2]), 30_000, "every node lists all 300 Macs");
    scenarioStart = Date.now();
  });

  it("steady load: every request succeeds, some run on another node's Macs, none twice at once", async () => {
    const spread = [...fleet.connectedBy().values()];
    assert.ok(
      spread.every((c) => Math.abs(c - MACS / NODES) <= 3),
      `Macs per node ${spread.join("/")}`,
    );
    const run = load();
    await sleep(15_000);
    const all = await run.stop();
    timings.push(`steady 15 s: ${summarizeLoad(all, NODES)}; forwarded ${forwarded(all)}`);
    assert.ok(all.length >= 100, `${all.length} requests in 15 s`);
    only(all, ["ok"], "steady");
    assert.ok(forwarded(all) > 0, "some requests ran on a Mac owned by another coordinator");
    const ids = new Set(execLog.filter((e) => e.outcome === "completed").map((e) => e.requestId));
    assert.ok(
      all.every((r) => ids.has(r.requestId!)),
      "every request's Mac logged its run",
    );
    assertExecLogClean(scenarioStart, all);
  });

  it("kill -9 of one coordinator: Macs re-home, survivors' requests succeed, its ledger holder is recovered", async () => {
    const dead = 2;
    const address = grpcAddress(dead);
    const moving = macsAt(address);
    const { records, at } = await underLoad(20_000, 5_000, () => procs[dead]!.kill9());
    timings.push(`kill -9 n${dead}: ${summarizeLoad(records, NODES)}; invisible retries ${retriedInvisibly(records)}`);
    await rehome(address, moving, at, `kill -9 n${dead}`);
    await eventually(() => viewsConverged([0, 1]), REHOME_BOUND_MS, "survivors list every Mac once");
    // Consumers of the survivors: pre-content failures are retried invisibly; only streams that had shown content
    // (on a Mac of the dead node) may end in an error, and only those in flight at the kill.
    const survivors = records.filter((r) => r.firstNode !== dead);
    only(survivors, ["ok", "error-after-content"], "consumers of the survivors");
    assert.ok(countOutcomes(survivors)["error-after-content"] <= CONSUMERS);
    // Consumers of the dead node: the SDK's retry (moved to the next node) succeeds, or their stream was cut.
    only(
      records.filter((r) => r.firstNode === dead),
      ["ok", "ok-after-retry", "connection-lost", "error-after-content"],
      "consumers of the dead node",
    );
    only(
      records.filter((r) => r.firstNode === dead && r.startMs > at + 1_000),
      ["ok-after-retry"],
      "consumers of the dead node after the kill",
    );
    assertExecLogClean(scenarioStart, records);
    const took = await ledgerSettles(at, "kill -9");
    timings.push(`kill -9 n${dead}: ledger reservations and dead leases resolved ${took} ms after the kill`);
    assert.ok(took <= 45_000, `resolved ${took} ms after the kill`);
    await ledgerVerify();

    // The node comes back (a new epoch) with no Macs of its own: whatever reaches it runs on the others' Macs.
    await startNode(dead);
    await eventually(() => viewsConverged([dead]), 20_000, "the restarted node mirrors every Mac");
    const back = await startLoad({
      baseUrls: [baseUrl(dead)],
      apiKey,
      concurrency: 4,
      model: MODEL,
      maxTokens: MAX_TOKENS,
      requests: 12,
      maxRetries: 0,
    }).done();
    only(back, ["ok"], "requests at the restarted node");
    assert.equal(forwarded(back), back.length, "all ran on Macs owned by the other nodes");
    await rebalance();
  });

  it("SIGSTOP of one coordinator for 10 s: Macs leave it, survivors' requests succeed, it serves again after SIGCONT", async () => {
    const frozen = 1;
    const address = grpcAddress(frozen);
    const moving = macsAt(address);
    let resumedAt = 0;
    const { records, at } = await underLoad(25_000, 3_000, async () => {
      procs[frozen]!.pause();
      setTimeout(() => {
        procs[frozen]!.resume();
        resumedAt = Date.now();
      }, 10_000);
    });
    timings.push(
      `SIGSTOP n${frozen} 10 s: ${summarizeLoad(records, NODES)}; invisible retries ${retriedInvisibly(records)}`,
    );
    await rehome(address, moving, at, `SIGSTOP n${frozen}`);
    only(
      records.filter((r) => r.firstNode !== frozen),
      ["ok", "error-after-content"],
      "consumers of the running nodes",
    );
    assert.ok(resumedAt > 0);
    await eventually(
      async () => {
        const [r] = await startLoad({
          baseUrls: [baseUrl(frozen)],
          apiKey,
          concurrency: 1,
          model: MODEL,
          maxTokens: MAX_TOKENS,
          requests: 1,
          maxRetries: 0,
        }).done();
        return r!.outcome === "ok";
      },
      15_000,
      "the resumed node serves again",
    );
    // The first request sent to the resumed node after SIGCONT that succeeded, from the load (the probe above
    // runs only once the load has ended, so its time says nothing).
    const firstServed = quantile(
      records.filter((r) => r.firstNode === frozen && r.startMs >= resumedAt && r.outcome === "ok").map((r) => r.endMs),
      0,
    );
    // Its consumers' requests in flight at some moment of the freeze (each consumer waits on its own request).
    const heldDuringFreeze = records.filter((r) => r.firstNode === frozen && r.startMs < resumedAt && r.endMs > at);
    timings.push(
      `SIGSTOP n${frozen}: first request sent after SIGCONT answered ${firstServed === undefined ? "never during the load" : `${firstServed - resumedAt} ms after SIGCONT`}; ` +
        `its requests in flight during the freeze: ${summarizeLoad(heldDuringFreeze, NODES)}`,
    );
    assertExecLogClean(scenarioStart, records);
    await ledgerSettles(at, "SIGSTOP");
    await ledgerVerify();
    await rebalance();
  });

  it("NATS restart: requests keep succeeding (local fallback), and the cluster view comes back", async () => {
    let restartedAt = 0;
    const { records, at } = await underLoad(25_000, 5_000, async () => {
      await nats.stop();
      setTimeout(() => {
        void nats.start().then(() => (restartedAt = Date.now()));
      }, 3_000);
    });
    timings.push(`NATS down 3 s: ${summarizeLoad(records, NODES)}; invisible retries ${retriedInvisibly(records)}`);
    only(records, ["ok", "ok-after-retry", "error-after-content"], "consumers during a NATS restart");
    assert.ok(countOutcomes(records)["error-after-content"] <= CONSUMERS);
    assert.ok(restartedAt > 0, "NATS restarted");
    await eventually(() => viewsConverged([0, 1, 2]), 20_000, "every node lists all 300 Macs again");
    timings.push(`NATS restart: views converged ${Date.now() - restartedAt} ms after NATS was back`);
    // Forwarding works again: load after the restart reaches other nodes' Macs.
    const run = load();
    await sleep(8_000);
    const afterRestart = await run.stop();
    only(afterRestart, ["ok"], "load after the NATS restart");
    assert.ok(forwarded(afterRestart) > 0, "requests are forwarded again");
    assertExecLogClean(scenarioStart, [...records, ...afterRestart]);
    await ledgerSettles(at, "NATS restart");
    await ledgerVerify();
  });

  it("PostgreSQL down 5 s: no 5xx walls, service resumes, the ledger stays consistent", async () => {
    const { records, at } = await underLoad(20_000, 5_000, () => {
      void proxy.outage(5_000);
      return Promise.resolve();
    });
    timings.push(`PG down 5 s: ${summarizeLoad(records, NODES)}`);
    const walls = records.filter((r) => r.status !== undefined && r.status >= 500);
    assert.equal(walls.length, 0, `5xx answers: ${walls.map((r) => `${r.status} ${r.error}`).join("; ")}`);
    only(records, ["ok", "ok-after-retry", "error", "error-after-content"], "consumers during a PostgreSQL outage");
    assert.ok(
      records.filter((r) => r.outcome === "error").every((r) => r.status === 429),
      "a refusal during the outage is a 429",
    );
    only(
      records.filter((r) => r.startMs > at + 5_000 + 5_000),
      ["ok"],
      "requests 5 s after PostgreSQL is back",
    );
    assertExecLogClean(scenarioStart, records);
    await ledgerSettles(at, "PG outage");
    await ledgerVerify();
  });

  it("shared rate limits: never over the account's limit, not under-admitted > 10 % when one node takes all", async () => {
    type Account = { account: { id: string } };
    const acct = await adminCall<Account>(baseUrl(0), adminKey, "CreateAccount", {
      name: "limited",
      tier: "ACCOUNT_TIER_CONSUMER",
      initialCreditMicroUsd: CREDIT.toString(),
    });
    const { apiKey: limitedKey } = await adminCall<{ apiKey: string }>(baseUrl(0), adminKey, "IssueApiKey", {
      accountId: acct.account.id,
      name: "limited",
    });
    const RATE_PER_S = 10;
    const BURST = 20;
    await adminCall(baseUrl(0), adminKey, "SetLimits", {
      accountId: acct.account.id,
      limits: { requestsPerMin: RATE_PER_S * 60, requestsBurst: BURST },
    });
    // Offered load far above the limit; no SDK retries, so every 429 is counted as a refusal.
    const phase = async (urls: string[]) => {
      const started = Date.now();
      const records = await (async () => {
        const run = startLoad({
          baseUrls: urls,
          apiKey: limitedKey,
          concurrency: 6,
          model: MODEL,
          maxTokens: 8,
          thinkMs: 50,
          maxRetries: 0,
        });
        await sleep(10_000);
        return run.stop();
      })();
      const elapsedS = (Date.now() - started) / 1000;
      const admitted = records.filter((r) => r.status === 200).length;
      const refused = records.filter((r) => r.status === 429).length;
      return { admitted, refused, bound: BURST + RATE_PER_S * elapsedS, offered: records.length };
    };
    await sleep(5_000); // limits reach every node (the override is read from PostgreSQL)
    const balanced = await phase(baseUrls());
    timings.push(`rate limit, balanced over 3 nodes: ${JSON.stringify(balanced)}`);
    assert.ok(balanced.offered > balanced.bound, `the load (${balanced.offered}) exceeded the limit`);
    assert.ok(balanced.admitted <= balanced.bound, `admitted ${balanced.admitted} > bound ${balanced.bound}`);
    await sleep(8_000); // the bucket refills to its burst and stranded lease tokens return
    const unbalanced = await phase([baseUrl(0)]);
    timings.push(`rate limit, all on n0: ${JSON.stringify(unbalanced)}`);
    assert.ok(unbalanced.admitted <= unbalanced.bound, `admitted ${unbalanced.admitted} > bound ${unbalanced.bound}`);
    assert.ok(
      unbalanced.admitted >= 0.9 * unbalanced.bound,
      `under-admitted: ${unbalanced.admitted} of ${unbalanced.bound.toFixed(0)} (one node took all the load)`,
    );
    await ledgerSettles(Date.now(), "rate limits");
    await ledgerVerify();
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
