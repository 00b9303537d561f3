/**
 * The system under fuzz: a real `coordinator serve` child process (so a crash is an exit we can see, and its
 * resident set is the coordinator's alone) on a fresh PostgreSQL database, provisioned over the admin API, with
 * honest simulated Macs connected from the test process over real gRPC, and a keep-alive HTTP client.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { chipProfiles } from "../../src/tools/fleet/chip-profiles.js";
import { SimulatedMac } from "../../src/tools/fleet/simulated-mac.js";
import { openDatabase } from "../../src/ledger/database.js";
import { verifyLedger } from "../../src/ledger/verify-ledger.js";
import {
  adminCall,
  freePorts,
  startCoordinatorProcess,
  type CoordinatorProcess,
} from "../support/coordinator-process.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";

const MiB = 1024 * 1024;

/**
 * How much the coordinator's resident set may grow over one fuzz file, after its warm-up. Measured: 20-130 MiB,
 * and a plateau rather than a trend (V8 growing its heap for megabyte bodies: three times the admin cases grew
 * it by 128 MiB instead of 118). The defects this guards against grew it by hundreds of MiB to GiB (issue 13:
 * 568 MiB for 20 bodies of 15 MiB, 1,950 MiB for three unauthenticated 300 MB admin uploads).
 */
export const MAX_RSS_GROWTH_BYTES = 192 * MiB;

/** Asserts the RSS growth since `baselineBytes` is within {@link MAX_RSS_GROWTH_BYTES}, and logs both numbers. */
export function checkRssGrowth(t: Pick<FuzzTarget, "rssBytes">, baselineBytes: number): void {
  const rss = t.rssBytes();
  process.stdout.write(
    `      coordinator RSS: ${(baselineBytes / MiB).toFixed(0)} MiB after warm-up, ${(rss / MiB).toFixed(0)} MiB after the fuzz\n`,
  );
  if (rss - baselineBytes >= MAX_RSS_GROWTH_BYTES)
    throw new Error(
      `the coordinator's RSS grew by ${((rss - baselineBytes) / MiB).toFixed(0)} MiB (bound ${MAX_RSS_GROWTH_BYTES / MiB} MiB)`,
    );
}

/**
 * Stops the coordinator (a graceful stop settles what is in flight) and runs `ledger verify`'s checks on its
 * database; throws with the violations unless every invariant holds.
 */
export async function stopAndVerifyLedger(t: Pick<FuzzTarget, "proc" | "databaseUrl">): Promise<void> {
  await t.proc.stop();
  const db = await openDatabase({ databaseUrl: t.databaseUrl, poolSize: 2 });
  try {
    const verdict = await verifyLedger(db.db);
    if (!verdict.ok) throw new Error(`ledger verify: ${[...verdict.violations, ...verdict.quarantined].join("; ")}`);
  } finally {
    await db.close();
  }
}

/** Internal errors the coordinator logged (LOG_LEVEL=error lines), for the end-of-file check. */
export function loggedErrors(t: Pick<FuzzTarget, "proc">): string[] {
  return t.proc
    .output()
    .split("\n")
    .filter((l) => /"level":\s*"error"/.test(l));
}

export interface FuzzTargetOptions {
  /** Simulated Macs serving gpt-oss-20b (default 2). */
  macs?: number;
  /** Extra coordinator settings by env name. */
  env?: Record<string, string>;
}

/** One HTTP exchange as the fuzz properties see it. */
export interface FuzzResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface FuzzRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** A response slower than this is a hang (the property fails). Default 15,000 ms. */
  timeoutMs?: number;
  /** Connect from this loopback address (default 127.0.0.1), so the coordinator sees another client. */
  localAddress?: string;
}

/**
 * The client address of cases with wrong credentials. The coordinator throttles failed API-key attempts per
 * client address, and a throttled address is refused even a valid key once its cache entry has expired: sent
 * from the honest cases' address, the wrong keys would turn those into 429s (reported; the auth cache's call).
 */
export const STRANGER_ADDRESS = "127.0.0.2";

export interface FuzzTarget {
  proc: CoordinatorProcess;
  /** The coordinator's database (a fresh one, dropped on close). */
  databaseUrl: string;
  port: number;
  grpcPort: number;
  baseUrl: string;
  adminKey: string;
  /** A funded service-tier account's key (high rate limits, so valid bodies reach dispatch). */
  apiKey: string;
  accountId: string;
  /** The provider token the Macs (and the fuzz's raw providers) register with. */
  providerToken: string;
  macs: SimulatedMac[];
  /** Sends one request on the shared keep-alive agent and reads the whole response. */
  send(r: FuzzRequest): Promise<FuzzResponse>;
  /** The coordinator's resident set, bytes (Linux /proc). */
  rssBytes(): number;
  /** CPU time the coordinator has used, seconds (Linux /proc; user + system). */
  cpuSeconds(): number;
  /** Throws unless the process is running and `/health` answers 200 (with its output tail on failure). */
  assertAlive(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the coordinator, provisions accounts over the admin API and connects the Macs. */
export async function startFuzzTarget(o: FuzzTargetOptions = {}): Promise<FuzzTarget> {
  const db: TestDatabase = await createTestDatabase();
  const [port, grpcPort] = (await freePorts(2)) as [number, number];
  const adminKey = `admin-${randomBytes(12).toString("hex")}`;
  // LOG_LEVEL error: fuzzing makes thousands of (expected) warnings; internal errors stay visible.
  // QUEUE_WAIT_MS 20: a request for a catalog model no Mac serves waits in the queue for a Mac to connect
  // (120 s by default) before its 429; the fuzz sends such requests one after another.
  // SHUTDOWN_GRACE_MS 1000: the end-of-file ledger check stops the process when nothing is in flight.
  const env = {
    LOG_LEVEL: "error",
    WARM_POOL_INTERVAL_MS: "0",
    QUEUE_WAIT_MS: "20",
    SHUTDOWN_GRACE_MS: "1000",
    ...o.env,
  };
  let proc: CoordinatorProcess | undefined;
  const macs: SimulatedMac[] = [];
  try {
    proc = await startCoordinatorProcess({ databaseUrl: db.url, httpPort: port, grpcPort, adminKey, env });
    return await provision(proc, db, { port, grpcPort, adminKey, macs, macCount: o.macs ?? 2 });
  } catch (e) {
    // Nothing may outlive a failed start: mocha would wait for the child process forever.
    await Promise.all(macs.map((m) => m.stop()));
    await proc?.kill9();
    await db.close();
    throw e;
  }
}

/** Provisions accounts over the admin API, connects the Macs (pushed onto `macs` as they start) and builds the target. */
async function provision(
  proc: CoordinatorProcess,
  db: TestDatabase,
  o: { port: number; grpcPort: number; adminKey: string; macs: SimulatedMac[]; macCount: number },
): Promise<FuzzTarget> {
  const { port, grpcPort, adminKey, macs } = o;
  const baseUrl = proc.baseUrl;
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  type Account = { account: { id: string } };
  const consumer = await adminCall<Account>(baseUrl, adminKey, "CreateAccount", {
    name: "fuzz-consumer",
    tier: "ACCOUNT_TIER_SERVICE",
    initialCreditMicroUsd: "1000000000000",
  });
  const { apiKey } = await adminCall<{ apiKey: string }>(baseUrl, adminKey, "IssueApiKey", {
    accountId: consumer.account.id,
    name: "fuzz",
  });
  const owner = await adminCall<Account>(baseUrl, adminKey, "CreateAccount", {
    name: "fuzz-mac-owner",
    tier: "ACCOUNT_TIER_CONSUMER",
  });
  const { token } = await adminCall<{ token: string }>(baseUrl, adminKey, "IssueProviderToken", {
    accountId: owner.account.id,
  });

  for (let i = 0; i < o.macCount; i++) {
    const mac = new SimulatedMac({
      coordinator: `127.0.0.1:${grpcPort}`,
      token,
      serial: `FUZZ-MAC-${process.pid}-${i}`,
      chip: chipProfiles.find((c) => c.memoryGb >= 64) ?? chipProfiles[chipProfiles.length - 1]!,
      models: ["gpt-oss-20b"],
      warmModels: ["gpt-oss-20b"],
      instant: true,
      // Short answers: the fuzz is about the edges, not decoding.
      naturalTokens: { min: 2, max: 8 },
      reconnectBaseMs: 50,
    });
    const registered = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`mac ${mac.serial} did not register`)), 10_000);
      mac.once("registered", () => {
        clearTimeout(t);
        resolve();
      });
    });
    macs.push(mac);
    mac.start();
    await registered;
  }

  const pid = proc.child.pid!;
  const send = (r: FuzzRequest): Promise<FuzzResponse> =>
    new Promise((resolve, reject) => {
      // An explicit Content-Length: node:http frames no body on GET/OPTIONS/DELETE otherwise, and the server would
      // read the stray bytes as the start of the next request on the keep-alive connection.
      const headers =
        r.body !== undefined ? { ...r.headers, "content-length": String(r.body.length) } : (r.headers ?? {});
      const req = request(
        {
          host: "127.0.0.1",
          port,
          method: r.method,
          path: r.path,
          headers,
          agent,
          ...(r.localAddress ? { localAddress: r.localAddress } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString("utf8"),
            }),
          );
          res.on("error", reject);
        },
      );
      req.setTimeout(r.timeoutMs ?? 15_000, () =>
        req.destroy(new Error(`no complete answer within ${r.timeoutMs ?? 15_000} ms (a hang)`)),
      );
      req.on("error", reject);
      req.end(r.body);
    });

  return {
    proc,
    databaseUrl: db.url,
    port,
    grpcPort,
    baseUrl,
    adminKey,
    apiKey,
    accountId: consumer.account.id,
    providerToken: token,
    macs,
    send,
    rssBytes: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024,
    cpuSeconds: () => {
      // Fields 14 and 15 of /proc/<pid>/stat (after the parenthesised command name), in clock ticks of 10 ms.
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
    async assertAlive() {
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
        throw new Error(
          `the coordinator exited (${proc.child.exitCode ?? proc.child.signalCode}):\n${proc.output().slice(-4_000)}`,
        );
      }
      const r = await send({ method: "GET", path: "/health", timeoutMs: 5_000 });
      if (r.status !== 200) throw new Error(`/health answered ${r.status}: ${r.body}\n${proc.output().slice(-4_000)}`);
    },
    async close() {
      await Promise.all(macs.map((m) => m.stop()));
      agent.destroy();
      await proc.stop();
      await db.close();
    },
  };
}
