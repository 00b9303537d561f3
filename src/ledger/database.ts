/**
 * Opens the ledger database: `DATABASE_URL` when given, otherwise a persistent embedded PostgreSQL in
 * `dataDir` (initialised on first run, reused afterwards). int8 is parsed to BigInt and migrations run before
 * the handle is returned.
 */
import path from "node:path";
import { mkdir } from "node:fs/promises";
import { Kysely, Migrator, PostgresDialect } from "kysely";
import pg from "pg";
import type { Database } from "./schema.js";
import { migrations } from "./migrations/index.js";
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from "./embedded-postgres-server.js";

// pg returns int8 as a string by default; money is bigint everywhere. Process-wide, set once on import.
pg.types.setTypeParser(20, (v: string) => BigInt(v));

export interface OpenDatabaseOptions {
  /** PostgreSQL URL; when absent an embedded server is started in `dataDir`. */
  databaseUrl?: string;
  /** Folder for the embedded cluster (`<dataDir>/postgres`). Default `./.data`. */
  dataDir?: string;
  /** Preferred embedded server port; a free one is used when taken. Default 54329. */
  embeddedPort?: number;
  /** pg pool size. Default 20. */
  poolSize?: number;
  /** Server-side statement timeout for every pooled connection, ms. Default 10_000. */
  statementTimeoutMs?: number;
  /** Embedded server log lines; default dropped. */
  onLog?: (line: string) => void;
  /** Apply pending migrations. Default true; `ledger verify` reads only. */
  migrate?: boolean;
}

export interface OpenedDatabase {
  db: Kysely<Database>;
  /** The URL in use (for child processes and `ledger verify`). */
  url: string;
  /** Destroys the pool, then stops the embedded server if one was started. */
  close(): Promise<void>;
}

/** Builds a Kysely handle on a pg pool for `url` (no migrations). */
export function createKysely(
  url: string,
  options: { poolSize?: number; statementTimeoutMs?: number } = {},
): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 20,
    statement_timeout: options.statementTimeoutMs ?? 10_000,
    // Idle-in-transaction sessions would hold row locks; fail them instead.
    idle_in_transaction_session_timeout: 30_000,
    connectionTimeoutMillis: 5_000,
  });
  // An idle client losing its server (restart, network) must not crash the process.
  pool.on("error", () => {});
  // Nor may a checked-out one: pg-pool listens for errors only while a client is idle, and a client emits
  // "error" when its backend is terminated between statements (e.g. inside a transaction): with no listener that
  // is an uncaught exception, which took the whole coordinator down when PostgreSQL went away under load. The
  // statement in progress still fails, and pg-pool discards the dead client when it is released.
  pool.on("connect", (client) => client.on("error", () => {}));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/** Runs all pending migrations; throws with the failing migration's error. */
export async function migrateToLatest(db: Kysely<Database>): Promise<void> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "?";
    throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}

/** Names of the migrations this build knows that `db` has not run yet (empty when the schema is current). Reads only. */
export async function pendingMigrations(db: Kysely<Database>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  return (await migrator.getMigrations()).filter((m) => m.executedAt === undefined).map((m) => m.name);
}

/** Opens (and migrates) the ledger database. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<OpenedDatabase> {
  let server: EmbeddedPostgresServer | undefined;
  let url = options.databaseUrl;
  if (!url) {
    const databaseDir = path.resolve(options.dataDir ?? "./.data", "postgres");
    await mkdir(path.dirname(databaseDir), { recursive: true });
    server = await startEmbeddedPostgres({
      databaseDir,
      port: options.embeddedPort ?? 54329,
      ...(options.onLog ? { onLog: options.onLog } : {}),
    });
    url = server.urlFor("coordinator");
    await ensureDatabase(server.urlFor("postgres"), "coordinator");
  }
  const db = createKysely(url, options);
  try {
    if (options.migrate !== false) await migrateToLatest(db);
  } catch (e) {
    await db.destroy();
    await server?.stop();
    throw e;
  }
  return {
    db,
    url,
    async close() {
      await db.destroy();
      await server?.stop();
    },
  };
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (!rowCount) await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
}
