/**
 * What the group-commit writer does with a write PostgreSQL refuses deterministically: tell such errors apart
 * from transient ones ({@link isDeterministicWriteError}), and move the one failing operation aside into
 * `ledger_quarantine` ({@link quarantine}) so it no longer blocks every write queued behind it. Kept apart
 * from the queue (`entry-writer.ts`) because it is the one place that decides a write will never be retried,
 * and from the batch SQL (`write-batch.ts`) because it writes a different table for a different reason.
 */
import type { Kysely } from "kysely";
import type { Database } from "./schema.js";
import type { WriteOp } from "./write-op.js";

/**
 * True for PostgreSQL errors that the same statement would hit again however often it is retried: cardinality
 * (21), data exceptions such as a NUL byte or a number out of range (22), integrity constraints (23), syntax or
 * undefined objects (42), WITH CHECK OPTION (44) and errors raised by triggers (P0). Connection loss, shutdown,
 * resource exhaustion, timeouts and serialization failures are transient.
 */
export function isDeterministicWriteError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return (
    typeof code === "string" && code.length === 5 && ["21", "22", "23", "42", "44", "P0"].includes(code.slice(0, 2))
  );
}

/**
 * Moves one operation aside: a row in `ledger_quarantine` with its payload and error, and, for a settlement, the
 * release of its reservation (reason `quarantined`), so the reservation does not stay open and the account's
 * money is not held; an operator can re-apply the payload after fixing its cause.
 */
export async function quarantine(db: Kysely<Database>, op: WriteOp, error: unknown): Promise<void> {
  // JSON text escapes a NUL as the six ASCII characters \u0000, which a text column accepts.
  const payload = JSON.stringify(op, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
  const message = String((error as Error)?.message ?? error)
    .replace(/\u0000/g, "\\u0000")
    .slice(0, 2_000);
  const sqlstate = String((error as { code?: unknown }).code ?? "").slice(0, 5) || null;
  const requestId = "requestId" in op ? op.requestId.replace(/\u0000/g, "") : null;
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto("ledger_quarantine")
      .values({ op_kind: op.kind, request_id: requestId, payload, error: message, sqlstate })
      .execute();
    if (op.kind === "settle" && requestId !== null) {
      await trx
        .updateTable("ledger_requests")
        .set({ state: "released", release_reason: "quarantined", resolved_at: new Date() })
        .where("request_id", "=", requestId)
        .where("state", "=", "reserved")
        .execute();
    }
  });
}
