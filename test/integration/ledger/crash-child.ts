/**
 * Child process for the crash test: runs the ledger under a reserve/settle/release load loop until killed.
 * argv: <databaseUrl> <accountId> <keyId> <providerAccountId>. Prints "ready" once some settles are durable.
 */
import { createKysely } from "../../../src/ledger/database.js";
import { createPostgresLedger } from "../../../src/ledger/postgres-ledger.js";

const [url, accountId, keyId, provider] = process.argv.slice(2) as [string, string, string, string];
const db = createKysely(url, { poolSize: 5 });
const pl = await createPostgresLedger({
  db,
  defaultPrices: { m: { inputMicroUsdPerMtok: 100_000, outputMicroUsdPerMtok: 400_000 } },
  leaseMicroUsd: 20_000n,
});
let n = 0;
let announced = false;
await Promise.all(
  Array.from({ length: 32 }, async () => {
    for (;;) {
      const requestId = `crash-${++n}`;
      const r = await pl.ledger.reserve({
        requestId,
        accountId,
        keyId,
        model: "m",
        promptTokensUpperBound: 1000,
        maxOutputTokens: 500,
      });
      if (!r.ok) continue;
      await new Promise((res) => setTimeout(res, Math.random() * 5));
      if (n % 5 === 0) await pl.ledger.release(requestId, "failed");
      else
        await pl.ledger.settle({
          requestId,
          providerId: "p",
          providerAccountId: provider,
          model: "m",
          usage: { promptTokens: 500, completionTokens: n % 300, reasoningTokens: 0 },
        });
      if (!announced && n > 300) {
        announced = true;
        console.log("ready");
      }
    }
  }),
);
