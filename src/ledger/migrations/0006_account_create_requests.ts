/**
 * The operator's idempotency key on CreateAccount (`request_id`): a retry after a lost response finds the account
 * its first attempt created (and funded) instead of creating and funding a second one. Unique where set.
 * Uses `Kysely<any>` and never imports `src/`, like every migration.
 */
import { sql, type Kysely } from "kysely";

/* eslint-disable @typescript-eslint/no-explicit-any */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE accounts ADD COLUMN create_request_id text NULL UNIQUE;`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE accounts DROP COLUMN create_request_id;`.execute(db);
}
