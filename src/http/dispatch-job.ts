/**
 * The hand-off from the HTTP layer to the dispatcher: the {@link DispatchJob} for one parsed, routed request.
 * Kept apart from the route because it translates between two vocabularies: the consumer's (the public model
 * name, its `user`, X-Route) and the dispatcher's (the build a Mac is asked for, scheduler constraints, a cache-
 * affinity digest, and the coordinator's own prompt count to check a provider's usage claim against).
 */
import { createHash } from "node:crypto";
import type { DispatchJob } from "../dispatch/types.js";
import { shapeOf, type NormalizedRequest } from "../inference/types.js";
import type { Span } from "../telemetry/tracing.js";
import { countPromptTokens } from "../usage/prompt-tokens.js";
import { tokenizerFamilyFor, type TokenizerFamily } from "../usage/tokenizer-family.js";
import type { Target } from "./route-target.js";

/** The request's own hooks into the dispatch (see {@link DispatchJob}). */
export interface JobHooks {
  /** The first attempt went to a provider: the ledger row is written now. */
  onDispatched(): void;
  /** A leader's first content. */
  onFirstToken(): void;
  /** The request's span. */
  trace: Span;
}

/** The job for request `requestId`, as routed to `target`. */
export function dispatchJobFor(requestId: string, n: NormalizedRequest, target: Target, hooks: JobHooks): DispatchJob {
  return {
    requestId,
    model: target.build,
    // The Mac is asked for the build, whatever public name the consumer used.
    bodyJson: Buffer.from(JSON.stringify(target.build === n.model ? n.body : { ...n.body, model: target.build })),
    ...(target.pools !== undefined ? { pools: target.pools } : {}),
    ...(target.selfServed ? { pinnedAccountId: target.callerAccountId } : {}),
    ...(target.serials !== undefined ? { allowedSerials: target.serials } : {}),
    callerAccountId: target.callerAccountId,
    ...(target.avoidOwn ? { avoidAccountId: target.callerAccountId } : {}),
    traits: n.traits,
    ...(typeof n.body.max_tokens === "number" ? { sentMaxTokens: n.body.max_tokens } : {}),
    shape: shapeOf(n.traits),
    ...(n.affinityKey !== undefined ? { affinityKey: affinityDigest(n.affinityKey) } : {}),
    usageCheck: usageCheckFor(n, target.build),
    onDispatched: hooks.onDispatched,
    trace: hooks.trace,
    onFirstToken: hooks.onFirstToken,
  };
}

/**
 * The coordinator's own prompt count for checking the provider's claim: counted once, when the request settles,
 * so tokenizing a long prompt never delays its first token.
 */
function usageCheckFor(n: NormalizedRequest, build: string): { family: TokenizerFamily; promptTokens(): number } {
  const family = tokenizerFamilyFor(build);
  let counted: number | undefined;
  return { family, promptTokens: () => (counted ??= countPromptTokens(n.body, family)) };
}

/**
 * The cache-affinity key as routing sees it: a fixed 16-character digest computed once per request, so the
 * scheduler's per-candidate rendezvous hash costs the same whatever the caller sent (it used to hash the raw
 * `user` once per candidate Mac on every routing decision). Deterministic across replicas.
 */
export function affinityDigest(key: string): string {
  return createHash("sha256").update(key).digest("base64url").slice(0, 16);
}
