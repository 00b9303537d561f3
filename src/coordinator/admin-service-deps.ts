/**
 * What the admin Connect service is served from: the ledger's accounts and limits, live provider sessions,
 * the alias table (a change served here replaces this process's alias book at once), and the limiter.
 */
import type { AdminServiceDeps } from "../admin/admin-service.js";
import type { PostgresLedger } from "../ledger/postgres-ledger.js";
import type { ProviderIdentityStore } from "../ledger/provider-identities.js";
import type { ProviderService } from "../protocol/provider-service.js";
import type { KeyedRateLimiter } from "../ratelimit/limiter.js";
import type { ProviderRegistry } from "../registry/provider-registry.js";
import type { ProviderView } from "../registry/types.js";
import type { ProviderVerdict } from "../scheduler/provider-verdict.js";
import type { DivergenceTracker } from "../usage/divergence-tracker.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";
import type { AliasSync } from "./alias-sync.js";

/** Everything the admin service reads, as the composition root built it. */
export interface AdminServiceDepsInput {
  ledger: PostgresLedger;
  registry: ProviderRegistry;
  providers: ProviderService;
  identities: ProviderIdentityStore;
  aliasSync: AliasSync;
  limiter: KeyedRateLimiter;
  usageDivergence: DivergenceTracker;
  verdictOf: (rec: ProviderView | undefined, fenceReason: string | null) => ProviderVerdict;
  clock: Clock;
  log: Logger;
}

/** Builds the admin service's dependencies (all but the admin key, which the consumer server holds). */
export function adminServiceDeps(i: AdminServiceDepsInput): Omit<AdminServiceDeps, "adminKey"> {
  const { ledger, registry, aliasSync, usageDivergence, clock, log } = i;
  return {
    accounts: ledger.accounts,
    registry,
    providers: i.providers,
    identities: i.identities,
    limits: ledger.limits,
    aliases: {
      list: () => aliasSync.store.list(),
      set: async (a) => {
        await aliasSync.store.set(a);
        await aliasSync.refresh();
      },
      delete: async (alias) => {
        const deleted = await aliasSync.store.delete(alias);
        if (deleted) await aliasSync.refresh();
        return deleted;
      },
    },
    limiter: i.limiter,
    refreshSpendCaps: (subject) => ledger.refreshLimits(subject),
    nowMs: () => clock.nowMs(),
    usageDivergence: (id) => ({
      overClaims: usageDivergence.overClaims(id),
      routingPenalty: usageDivergence.penalty(id),
    }),
    verdictOf: (id) => {
      const v = i.verdictOf(registry.get(id), null);
      return { routable: v.routable, reason: v.reason };
    },
    onInternalError: (e) => log.error("admin request failed", { error: String((e as Error)?.stack ?? e) }),
  };
}
