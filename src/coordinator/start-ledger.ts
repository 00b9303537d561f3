/**
 * The ledger as the coordinator runs it: prices from the catalog, lease and overdraft from the config, the
 * API-key cache, and the logging of its background failures; recovered before anything is served.
 */
import type { Kysely } from "kysely";
import type { Config } from "../config/config.js";
import { createPostgresLedger, type PostgresLedger } from "../ledger/postgres-ledger.js";
import type { Database } from "../ledger/schema.js";
import type { CatalogEntry } from "../models/catalog.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";

/** What {@link startLedger} needs besides the config. */
export interface StartLedgerDeps {
  db: Kysely<Database>;
  clock: Clock;
  catalog: readonly CatalogEntry[];
  log: Logger;
}

/** Opens the ledger on `db` and recovers what a previous process left unsettled. Close it with `ledger.close()`. */
export async function startLedger(config: Config, deps: StartLedgerDeps): Promise<PostgresLedger> {
  const { db, clock, catalog, log } = deps;
  const ledger = await createPostgresLedger({
    db,
    clock,
    defaultPrices: Object.fromEntries(
      catalog.map((m) => [
        m.id,
        {
          inputMicroUsdPerMtok: BigInt(m.inputMicroUsdPerMtok),
          outputMicroUsdPerMtok: BigInt(m.outputMicroUsdPerMtok),
        },
      ]),
    ),
    leaseMicroUsd: BigInt(config.ledgerLeaseMicroUsd),
    overdraftMicroUsd: BigInt(config.ledgerOverdraftMicroUsd),
    holderStaleMs: config.ledgerHolderStaleMs,
    apiKeyCache: {
      ttlMs: config.apiKeyCacheTtlMs,
      negativeTtlMs: config.apiKeyNegativeCacheTtlMs,
      staleIfErrorMs: config.apiKeyStaleIfErrorMs,
      maxKeys: config.apiKeyCacheMaxKeys,
      maxUnknownKeys: config.apiKeyNegativeCacheMaxKeys,
    },
    onError: (e) => log.warn("ledger background error", { error: String(e) }),
    // One line per quarantined write: a request that was neither billed nor paid until an operator acts.
    onQuarantine: (op, e) =>
      log.error("ledger write quarantined", {
        op: op.kind,
        ...("requestId" in op ? { request_id: op.requestId } : {}),
        ...(op.kind === "reserve" ? { account_id: op.accountId, model: op.model } : {}),
        ...(op.kind === "settle" ? { provider_id: op.providerId } : {}),
        sqlstate: (e as { code?: string })?.code,
        reason: String((e as Error)?.message ?? e),
      }),
  });
  const recovered = await ledger.recover();
  log.info("ledger recovered", { ...recovered });
  return ledger;
}
