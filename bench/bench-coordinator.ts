/**
 * A real coordinator for the benchmarks: scratch PostgreSQL database, HTTP and gRPC servers on free loopback
 * ports, a provider token, and `accounts` funded service-tier accounts with one API key each (requests rotate
 * over them so per-account rate limits, 200 req/s for the service tier, do not cap a throughput benchmark).
 */
import type { Kysely } from "kysely";
import { loadConfig, type Config } from "../src/config/config.js";
import { startCoordinator, type Coordinator } from "../src/coordinator.js";
import { openDatabase } from "../src/ledger/database.js";
import type { Database } from "../src/ledger/schema.js";
import { silentLogger } from "../src/util/logger.js";
import { createScratchDatabase } from "./scratch-database.js";

/** A running benchmark coordinator. */
export interface BenchCoordinator {
  coordinator: Coordinator;
  /** The scratch database (e.g. to verify the ledger after a run). */
  db: Kysely<Database>;
  /** The scratch database's URL (for coordinators in other processes joining the same ledger). */
  databaseUrl: string;
  baseUrl: string;
  grpcAddress: string;
  apiKeys: string[];
  providerToken: string;
  /** Which PostgreSQL server hosts the scratch database. */
  server: string;
  close(): Promise<void>;
}

/** A bench coordinator's config: loopback, free ports, no warm-pool planner; `overrides` apply last. */
export function benchConfig(overrides: Partial<Config> = {}): Config {
  return Object.freeze({
    ...loadConfig({}),
    httpPort: 0,
    grpcPort: 0,
    host: "127.0.0.1",
    warmPoolIntervalMs: 0,
    ...overrides,
  });
}

/** Starts the coordinator; `config` overrides apply last (ports and host are loopback/free by default). */
export async function startBenchCoordinator(o: {
  env: NodeJS.ProcessEnv;
  accounts: number;
  config?: Partial<Config>;
}): Promise<BenchCoordinator> {
  const scratch = await createScratchDatabase(o.env);
  const db = await openDatabase({ databaseUrl: scratch.url, poolSize: 10 });
  const coordinator = await startCoordinator(benchConfig(o.config), { db: db.db, logger: silentLogger });
  try {
    const accounts = coordinator.ledger.accounts;
    const apiKeys: string[] = [];
    for (let i = 0; i < o.accounts; i++) {
      const a = await accounts.createAccount({
        name: `bench-${i}`,
        tier: "service",
        initialCreditMicroUsd: 1_000_000_000_000n,
      });
      apiKeys.push((await accounts.issueApiKey({ accountId: a.id, name: "bench" })).apiKey);
    }
    const owner = await accounts.createAccount({ name: "bench-provider-owner", tier: "consumer" });
    const { token } = await accounts.issueProviderToken({ accountId: owner.id });
    return {
      coordinator,
      db: db.db,
      databaseUrl: scratch.url,
      baseUrl: `http://127.0.0.1:${coordinator.httpPort}`,
      grpcAddress: `127.0.0.1:${coordinator.grpcPort}`,
      apiKeys,
      providerToken: token,
      server: scratch.server,
      async close() {
        await coordinator.close();
        await db.close();
        await scratch.close();
      },
    };
  } catch (e) {
    await coordinator.close();
    await db.close();
    await scratch.close();
    throw e;
  }
}
