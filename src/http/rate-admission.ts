/**
 * The rate-limit step of the inference pipeline: the limiter's admission for the routed build, traced as its own
 * span. Kept apart from inference-route.ts because it is one self-contained sub-step with its own result type:
 * the ticket to reconcile once usage is known, or the limiter's 429, with the headers either way.
 */
import type { Principal } from "../accounts/types.js";
import type { CoordinatorError } from "../errors/coordinator-error.js";
import type { NormalizedRequest } from "../inference/types.js";
import { rateLimitError } from "../ratelimit/rate-limit-error.js";
import type { RateTicket } from "../ratelimit/types.js";
import { endSpan, startSpan, type Span } from "../telemetry/tracing.js";
import type { BillingDeps } from "./request-billing.js";
import type { Target } from "./route-target.js";

/**
 * The rate limiter's admission, traced: the ticket to reconcile once usage is known, or the limiter's 429. Its
 * headers go on every response from here on, refused or not.
 */
export async function admitRate(
  deps: Pick<BillingDeps, "limiter" | "clock">,
  principal: Principal,
  n: NormalizedRequest,
  target: Target,
  span: Span,
): Promise<RateAdmission> {
  const rateSpan = startSpan("rate_limit", span, { "coordinator.account.tier": principal.tier });
  // Waits only with a shared store whose grant ran short (one round trip), never with the memory store.
  const admitted = await deps.limiter.admitWaiting(
    {
      accountId: principal.accountId,
      keyId: principal.keyId,
      tier: principal.tier,
      // The operator's overrides (SetLimits) as of the key lookup, over the tier defaults.
      accountLimits: principal.accountLimits,
      keyLimits: principal.keyLimits,
      model: target.build,
      inputTokens: n.traits.estimatedPromptTokens,
      maxOutputTokens: n.traits.maxTokens,
    },
    () => deps.clock.nowMs(),
  );
  if (!admitted.ok) {
    const error = rateLimitError(admitted);
    endSpan(rateSpan, error, { "coordinator.rate_limit.allowed": false });
    return { ok: false, error, headers: admitted.headers };
  }
  endSpan(rateSpan, undefined, { "coordinator.rate_limit.allowed": true });
  return admitted;
}

export type RateAdmission =
  | { ok: true; ticket: RateTicket; headers: Record<string, string> }
  | { ok: false; error: CoordinatorError; headers: Record<string, string> };
