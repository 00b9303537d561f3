/**
 * The options of the provider gRPC edge (`ProviderService`, provider-service.ts) and their defaults, filled in once. Its own
 * module because the service and the helpers it is made of read the same resolved options, and the
 * composition root builds them without needing the service's code.
 */
import type { ProviderIdentityStore } from "../ledger/provider-identities.js";
import type { ProviderRecord, ProviderRegistry } from "../registry/provider-registry.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";

export interface ProviderServiceOptions {
  registry: ProviderRegistry;
  clock: Clock;
  /** Resolves a provider token to its owner account and token id; undefined = reject with UNAUTHENTICATED. */
  authenticate(token: string): Promise<{ accountId: string; tokenId: string } | undefined>;
  /** Serial → owner, key and opaque id. */
  identities: ProviderIdentityStore;
  /** The ids among these that are revoked (sessions holding them end). Without it, only `ProviderService.revokeToken` ends sessions. */
  revokedTokens?(tokenIds: readonly string[]): Promise<Set<string>>;
  /** Interval the coordinator asks providers to heartbeat at. Default 5,000 ms. */
  heartbeatIntervalMs?: number;
  /** A provider silent for this long is evicted. Default 20,000 ms. */
  heartbeatTimeoutMs?: number;
  /** Register (and the answer to its key challenge) must arrive within this long of the stream opening. Default 10,000 ms. */
  registerTimeoutMs?: number;
  /** A live session proves its key again this often. Default 300,000 ms. */
  challengeIntervalMs?: number;
  /** A live session must answer a challenge within this long. Default 30,000 ms. */
  challengeTimeoutMs?: number;
  /** How often live sessions' tokens are checked for revocation. Default 5,000 ms. */
  revocationCheckMs?: number;
  /** A serial disconnected for flooding may not register again for this long. Default 30,000 ms. */
  floodPenaltyMs?: number;
  /** Provider machines (serials) one account may own. Default 10,000. */
  maxMachinesPerAccount?: number;
  /**
   * Failed provider tokens per client address (the consumer edge's AuthFailureThrottle): past its budget a
   * Register is refused with RESOURCE_EXHAUSTED before its token is looked up. Without it, nothing is throttled.
   */
  failedTokens?: FailedTokenThrottle;
  /** Called after a provider registers (e.g. to clear health state, drain queues). */
  onConnected?(rec: ProviderRecord): void;
  /** Called after a provider's session is gone and it left the registry. */
  onDisconnected?(rec: ProviderRecord, reason: string): void;
  /**
   * A session was to be ended (fence, forgotten identity) but the Mac's stream is on another coordinator (cluster
   * mode: the registry only mirrors it here). The cluster tells the owner to end it.
   */
  onRemoteSession?(providerId: string, reason: string): void;
  /** A LoadModel outcome. */
  onLoadStatus?(rec: ProviderRecord, model: string, ok: boolean, error: string): void;
  logger?: Logger;
}

/** Defaults of the timing options (milliseconds). */
export const providerSessionDefaults = {
  heartbeatIntervalMs: 5_000,
  heartbeatTimeoutMs: 20_000,
  registerTimeoutMs: 10_000,
  challengeIntervalMs: 300_000,
  challengeTimeoutMs: 30_000,
  revocationCheckMs: 5_000,
  floodPenaltyMs: 30_000,
  maxMachinesPerAccount: 10_000,
} as const;

/** The options with every default filled in. */
export type ResolvedProviderServiceOptions = {
  -readonly [K in keyof typeof providerSessionDefaults]: number;
} & ProviderServiceOptions;

/** Fills in the defaults once. */
export function resolveProviderServiceOptions(options: ProviderServiceOptions): ResolvedProviderServiceOptions {
  return { ...providerSessionDefaults, ...options };
}

/** Failed-token accounting per client address (see `ProviderServiceOptions.failedTokens`). */
export interface FailedTokenThrottle {
  check(address: string, nowMs: number): { allowed: true } | { allowed: false; retryAfterMs: number };
  recordFailure(address: string, nowMs: number): void;
}
