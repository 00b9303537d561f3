/**
 * The dispatcher as the coordinator runs it: its timeouts and queue from the config, the shared scheduler
 * binding for every pick, and the response to a provider whose usage claims exceed the coordinator's count.
 */
import type { Config } from "../config/config.js";
import { Dispatcher } from "../dispatch/dispatcher.js";
import type { UsageCheck } from "../dispatch/attempt-billing.js";
import { classifyProviderError } from "../health/classify-provider-error.js";
import type { HealthTracker } from "../health/health-tracker.js";
import type { ProviderDirectory } from "../dispatch/provider-channel.js";
import type { ProviderService } from "../protocol/provider-service.js";
import type { ProviderRegistry } from "../registry/provider-registry.js";
import type { PickResult, RouteRequest } from "../scheduler/types.js";
import { count } from "../telemetry/metrics.js";
import type { DivergenceTracker } from "../usage/divergence-tracker.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";

/** What {@link createDispatcher} wires besides the config. */
export interface DispatchSideDeps {
  registry: ProviderRegistry;
  providers: ProviderService;
  /** Where the dispatcher finds a Mac's channel: the provider service, or the cluster's fleet. */
  directory: ProviderDirectory;
  clock: Clock;
  health: HealthTracker;
  /** The scheduler binding's dispatch route (scheduler-binding.ts). */
  pick: (req: RouteRequest) => PickResult;
  usageDivergence: DivergenceTracker;
  log: Logger;
}

/** Builds the dispatcher. */
export function createDispatcher(config: Config, deps: DispatchSideDeps): Dispatcher {
  return new Dispatcher({
    registry: deps.registry,
    directory: deps.directory,
    clock: deps.clock,
    health: deps.health,
    classify: classifyProviderError,
    pick: deps.pick,
    options: {
      firstTokenBaseMs: config.firstTokenBaseMs,
      firstTokenPerPromptTokenMs: config.firstTokenPerPromptTokenMs,
      inferenceTimeoutMs: config.inferenceTimeoutMs,
      preambleContentTimeoutMs: config.preambleContentTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
      speculativeFraction: config.speculativeFraction,
      maxAttempts: config.maxDispatchAttempts,
      queueLimit: config.queueLimit,
      queueWaitMs: config.queueWaitMs,
    },
    log: deps.log,
    onUsageChecked: usageCheckHandler(deps),
  });
}

/**
 * Each checked usage claim moves the provider's routing penalty; an over-claim is counted and logged, and a
 * provider that keeps over-claiming is fenced.
 */
function usageCheckHandler({ registry, providers, usageDivergence, log }: DispatchSideDeps): (c: UsageCheck) => void {
  return ({ providerId, requestId, model, defended }) => {
    const verdict = usageDivergence.record(providerId, defended.overClaimed);
    registry.setCostPenalty(providerId, verdict.routingPenalty);
    if (!defended.overClaimed) return;
    const d = defended.detail;
    count("provider.usage_overclaims", { model });
    log.warn("provider usage over-claimed", {
      provider_id: providerId,
      request_id: requestId,
      model,
      // A refused claim (a count past the wire bound) reads as "refused", not as a number.
      claimed_prompt_tokens: Number.isFinite(d.claimed.promptTokens) ? d.claimed.promptTokens : "refused",
      claimed_completion_tokens: Number.isFinite(d.claimed.completionTokens) ? d.claimed.completionTokens : "refused",
      billed_prompt_tokens: defended.usage.promptTokens,
      billed_completion_tokens: defended.usage.completionTokens,
      routing_penalty: verdict.routingPenalty,
      reason: d.promptOverClaimed
        ? d.completionOverClaimed
          ? "prompt and completion over the coordinator's count"
          : "prompt over the coordinator's count"
        : "completion over the coordinator's count",
    });
    if (verdict.fence) {
      usageDivergence.forget(providerId);
      void providers
        .fence(providerId, "usage claims repeatedly above the coordinator's count")
        .catch((e) => log.error("provider fence failed", { provider_id: providerId, reason: String(e) }));
    }
  };
}
