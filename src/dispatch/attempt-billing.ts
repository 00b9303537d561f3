/**
 * What a finished attempt is worth: the usage billed for a completed answer (the provider's claim where the
 * coordinator's own count backs it), the partial usage owed when the leader fails after commit or the consumer
 * hangs up, who is paid, and the measured rates the scheduler learns from. Kept apart from the run because it is
 * the money side of an outcome: pure given the attempt and the job, apart from reporting the usage check.
 */
import type { ProviderEvent, Usage } from "../inference/types.js";
import type { ProviderRegistry } from "../registry/provider-registry.js";
import type { ProviderId } from "../registry/types.js";
import { defendUsage, type DefendedUsage } from "../usage/defend-usage.js";
import { clampUsage, partialUsage, type Attempt } from "./attempt.js";
import type { DispatchJob, Served } from "./types.js";

/** One completed request's usage check. */
export interface UsageCheck {
  providerId: ProviderId;
  requestId: string;
  model: string;
  defended: DefendedUsage;
}

/**
 * The usage to bill for a completed attempt: the provider's claim where the coordinator's own count backs it,
 * else that count. Without a usage check (dispatcher unit tests) the claim is only clamped to max_tokens.
 */
export function billedUsage(
  job: DispatchJob,
  a: Attempt,
  e: ProviderEvent & { kind: "complete" },
  onUsageChecked?: (c: UsageCheck) => void,
): Usage {
  const check = job.usageCheck;
  if (!check) return clampUsage(e.usage, job.traits.maxTokens);
  // A refused claim (a count no request reaches) is no claim: bill our own count.
  const claimed = e.usageRefused ? { promptTokens: Infinity, completionTokens: Infinity, reasoningTokens: 0 } : e.usage;
  const defended = defendUsage({
    claimed,
    ownPrompt: check.promptTokens(),
    ownCompletion: a.output.tokens,
    family: check.family,
    maxTokens: job.traits.maxTokens,
    toolCalls: a.output.toolCalls,
  });
  onUsageChecked?.({ providerId: a.providerId, requestId: job.requestId, model: job.model, defended });
  return defended.usage;
}

/** What the leader produced before a post-commit failure or the consumer's hang-up (the coordinator's own count). */
export function consumedUsage(job: DispatchJob, a: Attempt): Usage {
  const check = job.usageCheck;
  if (!check) return partialUsage(a, job.traits.estimatedPromptTokens);
  const completion = Math.min(job.traits.maxTokens, Math.ceil(a.output.tokens * check.family.scale));
  return { promptTokens: check.promptTokens(), completionTokens: completion, reasoningTokens: 0 };
}

/** Who is paid for an attempt's output. */
export function servedBy(a: Attempt): Served {
  return { providerId: a.providerId, providerAccountId: a.accountId };
}

/**
 * Feeds the provider's measured prefill and decode rates (the scheduler trusts them over its claims). Our own
 * prompt estimate, not the provider's usage, and completion capped by what was actually streamed.
 */
export function observeRates(
  registry: ProviderRegistry,
  job: DispatchJob,
  a: Attempt,
  usage: Usage,
  nowMs: number,
): void {
  if (a.firstContentAtMs === undefined) return;
  registry.observeRates(a.providerId, job.model, {
    requestId: job.requestId,
    promptTokens: job.traits.estimatedPromptTokens,
    completionTokens: usage.completionTokens,
    streamedChars: a.contentChars,
    ttftMs: a.firstContentAtMs - a.startedAtMs,
    decodeMs: nowMs - a.firstContentAtMs,
    coldStart: a.acceptedAtMs !== undefined,
  });
}
