/**
 * A real coordinator for integration tests: fresh PostgreSQL database, HTTP and gRPC servers on free ports,
 * a funded account with an API key, and simulated Macs connected over real gRPC streams.
 */
import { randomBytes } from "node:crypto";
import { loadConfig, type Config } from "../../src/config/config.js";
import { startCoordinator, type Coordinator } from "../../src/coordinator.js";
import { chipProfiles } from "../../src/tools/fleet/chip-profiles.js";
import { SimulatedMac, type SimulatedMacOptions } from "../../src/tools/fleet/simulated-mac.js";
import { openDatabase, type OpenedDatabase } from "../../src/ledger/database.js";
import type { AccountTier } from "../../src/accounts/types.js";
import type { RateLimiterOptions } from "../../src/ratelimit/limiter.js";
import { createLogger, silentLogger, type Logger } from "../../src/util/logger.js";
import { createTestDatabase, type TestDatabase } from "./postgres.js";

export interface TestMacOptions extends Partial<Omit<SimulatedMacOptions, "coordinator" | "token">> {}

export interface TestCoordinatorOptions {
  /** Config overrides (ports/host are forced to loopback and free ports). */
  config?: Partial<Config>;
  /** One entry per simulated Mac. Default: two Macs serving gpt-oss-20b, warm, instant. */
  macs?: TestMacOptions[];
  tier?: AccountTier;
  creditMicroUsd?: bigint;
  /** Per-tier rate-limit overrides passed to the coordinator's limiter (default: the tier defaults). */
  rateLimitTiers?: RateLimiterOptions["tiers"];
  /** The coordinator's logger (default: silent, or TEST_LOG_LEVEL to stderr). */
  logger?: Logger;
  /** The open-file limit the coordinator's start-up check sees (default: the process's). */
  openFileLimit?: number;
}

export interface TestCoordinator {
  coordinator: Coordinator;
  baseUrl: string;
  /** OpenAI SDK base URL (`.../v1`). */
  apiBase: string;
  apiKey: string;
  accountId: string;
  adminKey: string;
  providerToken: string;
  providerAccountId: string;
  macs: SimulatedMac[];
  db: OpenedDatabase;
  /** Starts another Mac against this coordinator and waits until it is registered. */
  addMac(o?: TestMacOptions): Promise<SimulatedMac>;
  /** Waits until `n` providers are registered in the coordinator. */
  waitForProviders(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

let serial = 0;

/** A test coordinator's config: loopback, free ports, fast heartbeats, no warm-pool planner; `overrides` last. */
export function testConfig(adminKey: string, overrides: Partial<Config> = {}): Config {
  return Object.freeze({
    ...loadConfig({}),
    httpPort: 0,
    grpcPort: 0,
    host: "127.0.0.1",
    adminKey,
    heartbeatIntervalMs: 200,
    warmPoolIntervalMs: 0,
    ...overrides,
  });
}

export async function startTestCoordinator(o: TestCoordinatorOptions = {}): Promise<TestCoordinator> {
  const testDb: TestDatabase = await createTestDatabase();
  const db = await openDatabase({ databaseUrl: testDb.url, poolSize: 10 });
  const adminKey = `admin-${randomBytes(12).toString("hex")}`;
  const config = testConfig(adminKey, o.config);
  const coordinator = await startCoordinator(config, {
    db: db.db,
    logger: o.logger ?? (process.env.TEST_LOG_LEVEL ? createLogger(process.env.TEST_LOG_LEVEL) : silentLogger),
    ...(o.rateLimitTiers ? { rateLimitTiers: o.rateLimitTiers } : {}),
    ...(o.openFileLimit !== undefined ? { openFileLimit: o.openFileLimit } : {}),
  });
  const accounts = coordinator.ledger.accounts;
  const account = await accounts.createAccount({
    name: "test",
    tier: o.tier ?? "consumer",
    initialCreditMicroUsd: o.creditMicroUsd ?? 50_000_000n,
  });
  const { apiKey } = await accounts.issueApiKey({ accountId: account.id, name: "test" });
  const owner = await accounts.createAccount({ name: "provider-owner", tier: "consumer" });
  const { token } = await accounts.issueProviderToken({ accountId: owner.id });

  const macs: SimulatedMac[] = [];
  const addMac = async (m: TestMacOptions = {}): Promise<SimulatedMac> => {
    const mac = new SimulatedMac({
      coordinator: `127.0.0.1:${coordinator.grpcPort}`,
      token,
      serial: `TEST-${process.pid}-${++serial}`,
      chip: chipProfiles.find((c) => c.memoryGb >= 64) ?? chipProfiles[chipProfiles.length - 1]!,
      models: ["gpt-oss-20b"],
      instant: true,
      warmModels: ["gpt-oss-20b"],
      heartbeatIntervalMs: 200,
      reconnectBaseMs: 50,
      ...m,
    });
    macs.push(mac);
    const registered = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`mac ${mac.serial} did not register`)), 10_000);
      mac.once("registered", () => {
        clearTimeout(t);
        resolve();
      });
    });
    mac.start();
    await registered;
    return mac;
  };

  const waitForProviders = async (n: number, timeoutMs = 10_000) => {
    const until = Date.now() + timeoutMs;
    while (coordinator.registry.size < n) {
      if (Date.now() > until) throw new Error(`expected ${n} providers, have ${coordinator.registry.size}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  for (const m of o.macs ?? [{}, {}]) await addMac(m);
  const baseUrl = `http://127.0.0.1:${coordinator.httpPort}`;
  return {
    coordinator,
    baseUrl,
    apiBase: `${baseUrl}/v1`,
    apiKey,
    accountId: account.id,
    adminKey,
    providerToken: token,
    providerAccountId: owner.id,
    macs,
    db,
    addMac,
    waitForProviders,
    async close() {
      await Promise.all(macs.map((m) => m.stop()));
      await coordinator.close();
      await db.close();
      await testDb.close();
    },
  };
}
