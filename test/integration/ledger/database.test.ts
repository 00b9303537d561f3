import assert from "node:assert/strict";
import { sql } from "kysely";
import { openDatabase } from "../../../src/ledger/database.js";
import { createTestDatabase, type TestDatabase } from "../../support/postgres.js";

describe("openDatabase", () => {
  let testDb: TestDatabase;
  before(async () => {
    testDb = await createTestDatabase();
  });
  after(async () => {
    await testDb.close();
  });

  it("migrates a fresh database, parses int8 as bigint, and is idempotent on reopen", async () => {
    const first = await openDatabase({ databaseUrl: testDb.url });
    const row = await sql<{ n: bigint }>`SELECT 9007199254740993::int8 AS n`.execute(first.db);
    assert.equal(row.rows[0]!.n, 9007199254740993n);
    const platform = await first.db
      .selectFrom("accounts")
      .select("tier")
      .where("id", "=", "platform")
      .executeTakeFirst();
    assert.equal(platform?.tier, "service");
    await first.close();
    const second = await openDatabase({ databaseUrl: testDb.url });
    const count = await second.db
      .selectFrom("accounts")
      .select((eb) => eb.fn.countAll<bigint>().as("n"))
      .executeTakeFirstOrThrow();
    assert.equal(count.n, 1n);
    await second.close();
  });
});
