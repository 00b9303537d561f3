/** Shared set-up for ledger integration tests: one migrated database per file, fresh accounts per test. */
import { openDatabase, type OpenedDatabase } from "../../../src/ledger/database.js";
import {
  createPostgresLedger,
  type PostgresLedger,
  type PostgresLedgerOptions,
} from "../../../src/ledger/postgres-ledger.js";
import type { ReserveInput, SettleInput } from "../../../src/ledger/types.js";
import { createTestDatabase, type TestDatabase } from "../../support/postgres.js";

export const prices = { "test-model": { inputMicroUsdPerMtok: 100_000, outputMicroUsdPerMtok: 400_000 } };

export interface LedgerFixture {
  testDb: TestDatabase;
  opened: OpenedDatabase;
  open(options?: Partial<PostgresLedgerOptions>): Promise<PostgresLedger>;
  closeAll(): Promise<void>;
}

export async function ledgerFixture(): Promise<LedgerFixture> {
  const testDb = await createTestDatabase();
  const opened = await openDatabase({ databaseUrl: testDb.url, poolSize: 10 });
  const ledgers: PostgresLedger[] = [];
  return {
    testDb,
    opened,
    async open(options = {}) {
      const l = await createPostgresLedger({ db: opened.db, defaultPrices: prices, ...options });
      ledgers.push(l);
      return l;
    },
    async closeAll() {
      for (const l of ledgers) await l.close();
      await opened.close();
      await testDb.close();
    },
  };
}

let seq = 0;
export function reserveInput(accountId: string, keyId: string, over: Partial<ReserveInput> = {}): ReserveInput {
  return {
    requestId: `req-${process.pid}-${++seq}`,
    accountId,
    keyId,
    model: "test-model",
    promptTokensUpperBound: 1000,
    maxOutputTokens: 500,
    ...over,
  };
}

export function settleInput(
  requestId: string,
  providerAccountId: string,
  promptTokens: number,
  completionTokens: number,
): SettleInput {
  return {
    requestId,
    providerId: "prov-1",
    providerAccountId,
    model: "test-model",
    usage: { promptTokens, completionTokens, reasoningTokens: 0 },
  };
}
