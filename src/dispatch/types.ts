/**
 * The dispatcher's contract with the HTTP layer: a job in, deltas out through a sink, a result back.
 */
import type { TokenizerFamily } from "../usage/tokenizer-family.js";
import type { CoordinatorError } from "../errors/coordinator-error.js";
import type {
  Delta,
  FinishReason,
  ProviderErrorReason,
  RequestShape,
  RequestTraits,
  Usage,
} from "../inference/types.js";
import type { ProviderId } from "../registry/types.js";
import type { HealthGates } from "../scheduler/types.js";
import type { Span } from "../telemetry/tracing.js";

/** One consumer request, ready to dispatch. */
export interface DispatchJob {
  requestId: string;
  model: string;
  /** The normalized chat-completions body as UTF-8 JSON. */
  bodyJson: Uint8Array;
  traits: RequestTraits;
  /**
   * The max_tokens the Mac is sent (the body's), when it differs from `traits.maxTokens`, which may be clamped to
   * the context room the prompt estimate leaves. Bounds the output the leader may stream (request-run.ts).
   */
  sentMaxTokens?: number;
  shape: RequestShape;
  affinityKey?: string;
  /** Self-route: only this account's own machines; never raced. */
  pinnedAccountId?: string;
  /** Only machines with these serials (the body's `provider_serials`). */
  allowedSerials?: ReadonlySet<string>;
  /** The caller's account, so its own private machines may serve it and no one else's do. */
  callerAccountId?: string;
  /** Not this account's machines (`X-Route: prefer` gone public). */
  avoidAccountId?: string;
  /** Model pools whose providers may serve it (scheduler/model-pools.ts); absent = pools off or bypassed. */
  pools?: ReadonlySet<string>;
  /**
   * The coordinator's own usage count, against which a provider's usage claim is checked (usage/defend-usage.ts).
   * `promptTokens` is evaluated at most once, when the request settles (off the time to first token). Without it
   * (dispatcher unit tests) the claim is only clamped to max_tokens.
   */
  usageCheck?: { family: TokenizerFamily; promptTokens(): number };
  /**
   * Called once, when the first attempt is sent to a provider: from then on the request's money must be
   * traceable, so the HTTP layer records its ledger reservation here. A request that never reaches a provider
   * (queue full or timed out, no capacity, cancelled while queued) never calls it. Optional.
   */
  onDispatched?(): void;
  /** The request's span: each routing decision and provider attempt is a child span. Optional. */
  trace?: Span;
  /** Called whenever an attempt's first content makes it the leader (again after a buffered failover). Optional. */
  onFirstToken?(): void;
}

/**
 * Where the response goes. Nothing is written before {@link DispatchSink.commit}: until then a failure can be
 * retried invisibly. The dispatcher commits a streaming response (`traits.stream`) on the first content-bearing
 * delta, and a buffered one only when the provider completes, immediately before {@link DispatchSink.finish}.
 */
export interface DispatchSink {
  /** Writes (or, buffered, prepares) the status line, headers and opening events. Called at most once. */
  commit(providerId: ProviderId): void;
  /** Output after commit (held role deltas are replayed first; a buffered answer arrives all at once). */
  deltas(ds: readonly Delta[]): void;
  finish(reason: FinishReason, usage: Usage): void;
  /** Ends a committed response with an explicit in-band error (never a bare close). */
  failAfterCommit(e: CoordinatorError): void;
}

/** Who served (or was serving) the request, for billing. */
export interface Served {
  providerId: ProviderId;
  providerAccountId: string;
}

export type DispatchResult =
  | ({ kind: "completed"; usage: Usage; finishReason: FinishReason; attempts: number } & Served)
  /**
   * `served` and `partial` are present exactly when something is billable: what the leading provider produced
   * before a post-commit failure, or before the consumer hung up (streaming or buffered). A failure before commit
   * carries neither: a failed attempt whose output never reached the consumer is never billed.
   */
  | { kind: "failed"; error: CoordinatorError; committed: boolean; attempts: number; served?: Served; partial?: Usage }
  | { kind: "cancelled"; committed: boolean; attempts: number; served?: Served; partial?: Usage };

/** How a provider error is treated by breakers and the failover loop. */
export type ErrorClass = "sickness" | "capacity" | "client_error" | "deterministic";

/** Health state the dispatcher reads (gates) and feeds (outcomes). */
export interface DispatchHealth extends HealthGates {
  recordOutcome(o: {
    providerId: ProviderId;
    model: string;
    shape: RequestShape;
    kind: "success" | "incomplete" | "sickness" | "capacity" | "client_error";
    nowMs: number;
  }): void;
  recordLoadRefusal(providerId: ProviderId, model: string, nowMs: number): void;
}

/** Classifies a provider error (see src/health). */
export type ErrorClassifier = (e: { statusCode: number; reason: ProviderErrorReason; message: string }) => ErrorClass;
