/**
 * Whether this process's schema is current. Migrations normally ran before start (openDatabase); a replica
 * started against an older schema (another replica still migrating) stays unready on /readyz until they have.
 */
import type { Kysely } from "kysely";
import { pendingMigrations } from "../ledger/database.js";
import type { Database } from "../ledger/schema.js";

/** The schema's state as last read, and a way to read it again. */
export interface MigrationWatch {
  /** True once no migration is pending (it never goes back). */
  readonly current: boolean;
  /**
   * While not current, re-reads the pending migrations in the background, one read at a time (each readiness
   * probe calls this). `current` changes when the read completes, not during this call.
   */
  poll(): void;
}

/** Reads the schema's state once now; `onCurrent` runs when a later {@link MigrationWatch.poll} finds it current. */
export async function watchMigrations(db: Kysely<Database>, onCurrent: () => void): Promise<MigrationWatch> {
  let current = (await pendingMigrations(db)).length === 0;
  let recheck: Promise<void> | undefined;
  return {
    get current() {
      return current;
    },
    poll() {
      if (current) return;
      recheck ??= pendingMigrations(db)
        .then(
          (p) => {
            current = p.length === 0;
            if (current) onCurrent();
          },
          () => {},
        )
        .finally(() => (recheck = undefined));
    },
  };
}
