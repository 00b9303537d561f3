/**
 * This process's identity in the ledger: its row in `ledger_holders`. Every lease and reservation is tagged with
 * the holder id, and recovery (`recovery.ts`) closes the leases and releases the reservations of holders whose
 * heartbeat stopped. Kept as one small object because the id can change: a process that was silent longer than
 * `holderStaleMs` has been recovered by another one, and must carry on under a fresh id (its old leases are gone).
 */
import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import type { Database } from "./schema.js";
import { heartbeat, registerHolder } from "./lease-sql.js";

/** The ledger holder of one coordinator process. */
export class LedgerHolder {
  readonly #db: Kysely<Database>;
  #id: string;

  private constructor(db: Kysely<Database>, id: string) {
    this.#db = db;
    this.#id = id;
  }

  /** Registers a new holder row and returns it. */
  static async register(db: Kysely<Database>): Promise<LedgerHolder> {
    const id = `h_${randomUUID()}`;
    await registerHolder(db, id);
    return new LedgerHolder(db, id);
  }

  /** The current holder id; read it at each use, since {@link keepAlive} may replace it. */
  get id(): string {
    return this.#id;
  }

  /**
   * Heartbeats the holder row. Returns true if it was still ours; false if recovery elsewhere had closed it (we
   * were silent longer than `holderStaleMs`), in which case a fresh holder has been registered and every lease
   * drawn under the old id must be forgotten by the caller.
   */
  async keepAlive(): Promise<boolean> {
    if (await heartbeat(this.#db, this.#id)) return true;
    this.#id = `h_${randomUUID()}`;
    await registerHolder(this.#db, this.#id);
    return false;
  }

  /** Marks the holder closed (orderly shutdown, after its leases were returned). */
  async close(): Promise<void> {
    await this.#db.updateTable("ledger_holders").set({ closed_at: new Date() }).where("id", "=", this.#id).execute();
  }
}
