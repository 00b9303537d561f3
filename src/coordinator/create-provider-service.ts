/**
 * The provider side: the service that runs every provider's session (handshake, heartbeats, challenges,
 * revocation), wired to the ledger for authentication and to the health tracker for what sessions report.
 */
import type { Config } from "../config/config.js";
import type { HealthTracker } from "../health/health-tracker.js";
import type { PostgresLedger } from "../ledger/postgres-ledger.js";
import type { ProviderIdentityStore } from "../ledger/provider-identities.js";
import { AuthFailureThrottle } from "../http/auth-failure-throttle.js";
import { ProviderService } from "../protocol/provider-service.js";
import type { ProviderRecord, ProviderRegistry } from "../registry/provider-registry.js";
import type { DivergenceTracker } from "../usage/divergence-tracker.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";

/** What {@link createProviderService} wires besides the config. */
export interface ProviderSideDeps {
  registry: ProviderRegistry;
  clock: Clock;
  health: HealthTracker;
  ledger: PostgresLedger;
  identities: ProviderIdentityStore;
  usageDivergence: DivergenceTracker;
  log: Logger;
  /** Told after the service's own bookkeeping when a Mac's session starts or ends here (the cluster's fleet). */
  sessions?: {
    connected(rec: ProviderRecord): void;
    disconnected(rec: ProviderRecord): void;
    /** End a Mac's session that lives on another coordinator. */
    endRemote(providerId: string, reason: string): void;
  };
}

/** Builds the provider service (its gRPC server is started later, by the listening step). */
export function createProviderService(config: Config, deps: ProviderSideDeps): ProviderService {
  const { registry, clock, health, ledger, usageDivergence, log } = deps;
  return new ProviderService({
    registry,
    clock,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    heartbeatTimeoutMs: config.heartbeatTimeoutMs,
    challengeIntervalMs: config.providerChallengeIntervalMs,
    challengeTimeoutMs: config.providerChallengeTimeoutMs,
    revocationCheckMs: config.providerRevocationCheckMs,
    maxMachinesPerAccount: config.providerMaxMachinesPerAccount,
    authenticate: (token) => ledger.accounts.authenticateProvider(token),
    failedTokens: new AuthFailureThrottle({
      burst: config.authFailureBurst,
      refillPerSec: config.authFailureRefillPerS,
      maxAddresses: config.authFailureMaxAddresses,
    }),
    identities: deps.identities,
    revokedTokens: (ids) => ledger.accounts.revokedProviderTokens(ids),
    onConnected: (rec) => {
      health.forgetProvider(rec.id);
      // The machine's usage record outlives its sessions (its id is stable): a reconnect does not wash it.
      registry.setCostPenalty(rec.id, usageDivergence.penalty(rec.id));
      deps.sessions?.connected(rec);
    },
    onDisconnected: (rec) => {
      health.forgetProvider(rec.id);
      deps.sessions?.disconnected(rec);
    },
    onRemoteSession: (providerId, reason) => deps.sessions?.endRemote(providerId, reason),
    onLoadStatus: (rec, model, ok, error) => {
      if (!ok) {
        health.recordLoadRefusal(rec.id, model, clock.nowMs());
        log.warn("model load failed", { provider_id: rec.id, model, error });
      }
    },
    logger: log,
  });
}
