/**
 * The scheduler's contract: a registry snapshot and a request in, a decision out, as data. The dispatcher
 * carries the decision out and records metrics; the scheduler does no I/O and reads no clock.
 */
import type { RequestShape, RequestTraits } from "../inference/types.js";
import type { ProviderId, ProviderView } from "../registry/types.js";

/** What the scheduler needs to know about one request. */
export interface RouteRequest {
  requestId: string;
  model: string;
  traits: RequestTraits;
  shape: RequestShape;
  /** Providers this request must not go to (already failed, or racing it). */
  exclude: ReadonlySet<ProviderId>;
  /** After a 5xx: prefer providers running a different binary version (soft). */
  avoidVersion?: string;
  /** `user` / `prompt_cache_key` for optional cache affinity. */
  affinityKey?: string;
  /** Route only to machines owned by this account (self-route); never raced. */
  pinnedAccountId?: string;
  /** Route only to machines with these serials (the body's `provider_serials`). */
  allowedSerials?: ReadonlySet<string>;
  /** The caller's account: a `private_only` machine serves no one else. Absent = a request of no account. */
  callerAccountId?: string;
  /**
   * Not this account's machines: `X-Route: prefer` gone public (its own were busy at admission), so a paid
   * request never lands on the caller's own Mac, billing the owner for its own machine.
   */
  avoidAccountId?: string;
  /** The model pools that may serve this request (scheduler/model-pools.ts); absent = pools off or bypassed. */
  pools?: PoolConstraint | undefined;
}

/** Which providers a request may use under model pools. */
export interface PoolConstraint {
  /** Pool keys whose providers may serve the request (an alias's own; every alias of a shared build). */
  keys: ReadonlySet<string>;
  /**
   * Also admit providers of another pool that are safely reassignable (nothing in flight, nothing resident,
   * no load pending), and those in `spare`; a pick of one carries `assignPool`. Only on the reassigning passes,
   * once the pool is starved.
   */
  reassign: boolean;
  /**
   * With `reassign`, also admit these providers of other pools: idle with a model loaded, in a pool that keeps
   * another such member (`spareProviders`, model-pools.ts). The third pass, once the pool is full and no empty
   * provider is left.
   */
  spare?: ReadonlySet<string>;
}

/** Why a provider was chosen, for logs and metrics. */
export type PickReason = "warm" | "cold" | "affinity";

/** Why a request cannot be served by any connected provider right now, structurally. */
export type RejectCode =
  | "model_not_found" // no provider and no catalog entry knows the model
  | "model_unavailable" // no connected provider can structurally serve this shape (vision, tools, fenced, cooled)
  | "context_overflow"; // the prompt + output cannot fit any provider's context

export type PickResult =
  | {
      kind: "picked";
      providerId: ProviderId;
      reason: PickReason;
      /** True if the model is not loaded there yet (a LoadModel is implied). */
      cold: boolean;
      /** Tokens reserved against the slot at admission (prompt + expected output). */
      reservedTokens: number;
      /** Expected completion time on that provider, ms. */
      costMs: number;
      /** The pool the provider must be assigned to before dispatch (a reassignment on demand). */
      assignPool?: string;
    }
  /**
   * No room now. `pool_exhausted`: the request's pool has none and nothing can be reassigned to it, though
   * providers of other pools could take it (the HTTP edge answers 429 `pool_exhausted`; a queued request waits).
   */
  | { kind: "queue"; reason: "all_busy" | "loading" | "pool_exhausted"; retryAfterMs: number }
  | { kind: "reject"; code: RejectCode; message: string };

/**
 * Health and capability state owned outside the scheduler (breakers, cooldowns), read through this interface
 * so selection, preflight and the final admit share one gate.
 */
export interface HealthGates {
  /** (provider, model, shape) on an error cooldown, or the provider's health breaker open. */
  isCooledDown(providerId: ProviderId, model: string, shape: RequestShape, nowMs: number): boolean;
  /** (provider, model) recently refused a load; do not route cold requests there. */
  isLoadCooledDown(providerId: ProviderId, model: string, nowMs: number): boolean;
}

export type { ProviderView };
