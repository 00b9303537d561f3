/**
 * Simulates a Postgres outage for one database without touching the server: `ALLOW_CONNECTIONS false` refuses
 * every new connection (superusers included) and `pg_terminate_backend` drops the open ones.
 */
import pg from "pg";

/** Makes the database at `url` unreachable (`false`) or reachable again (`true`). */
export async function setDatabaseReachable(url: string, reachable: boolean): Promise<void> {
  const u = new URL(url);
  const name = u.pathname.slice(1);
  u.pathname = "/postgres";
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    await c.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS ${reachable ? "true" : "false"}`);
    if (!reachable)
      await c.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        [name],
      );
  } finally {
    await c.end();
  }
}
