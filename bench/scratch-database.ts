/**
 * A fresh PostgreSQL database for one benchmark: created on BENCH_DATABASE_URL's server when set, else through
 * the test helper (TEST_DATABASE_URL's server, or an embedded PostgreSQL 17 started once per process).
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { createTestDatabase } from "../test/support/postgres.js";

/** A scratch database; `close()` drops it. */
export interface ScratchDatabase {
  url: string;
  /** Which server hosts it, for the report. */
  server: string;
  close(): Promise<void>;
}

/** Creates a uniquely named database and returns its URL. */
export async function createScratchDatabase(env: NodeJS.ProcessEnv): Promise<ScratchDatabase> {
  const admin = env.BENCH_DATABASE_URL;
  if (!admin) {
    const t = await createTestDatabase();
    return {
      url: t.url,
      server: process.env.TEST_DATABASE_URL ? "TEST_DATABASE_URL" : "embedded PostgreSQL 17",
      close: () => t.close(),
    };
  }
  const name = `bench_${randomBytes(5).toString("hex")}`;
  const query = async (sql: string) => {
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await query(`CREATE DATABASE "${name}"`);
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    server: "BENCH_DATABASE_URL",
    close: () => query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  };
}
