/**
 * The money and rate-budget side of one inference request: the ledger reservation before dispatch, and after it
 * the settlement that follows the dispatcher's result (the ledger and the rate limiter both reconciled). Kept
 * apart from the route so that who pays what, in every outcome, reads in one place.
 */
import type { Principal } from "../accounts/types.js";
import type { DispatchResult } from "../dispatch/types.js";
import { promptBytesUpperBound } from "../dialects/index.js";
import { CoordinatorError } from "../errors/coordinator-error.js";
import type { NormalizedRequest, Usage } from "../inference/types.js";
import type { Ledger } from "../ledger/types.js";
import type { RateLimiter, RateTicket } from "../ratelimit/types.js";
import type { Clock } from "../util/clock.js";
import type { Target } from "./route-target.js";

/** What reserving and settling need (a slice of the inference route's deps). */
export interface BillingDeps {
  ledger: Ledger;
  limiter: RateLimiter;
  clock: Clock;
  /** Observes a finished request (output-length estimators). */
  onFinished?(model: string, usage: Usage, maxTokens: number, durationMs: number): void;
  log?(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * Holds the request's worst-case cost against the caller's credit (in memory; the ledger row is written at
 * dispatch). Throws `rate_limited` when the ledger cannot take it now, `insufficient_quota` when credit is short.
 */
export async function reserveCredit(
  deps: BillingDeps,
  requestId: string,
  p: Principal,
  n: NormalizedRequest,
  target: Target,
): Promise<void> {
  const r = await deps.ledger.reserve({
    requestId,
    accountId: p.accountId,
    keyId: p.keyId,
    model: target.build,
    ...(target.selfServed ? { selfServed: true } : {}),
    // Settlement never charges past the reservation, so the prompt's share must bound the real count from above:
    // UTF-8 bytes (the routing estimate, ~chars/4, doubled was a quarter of a dense CJK prompt's tokens).
    promptTokensUpperBound: promptBytesUpperBound(promptMessages(n), promptTools(n)),
    maxOutputTokens: n.traits.maxTokens,
  });
  if (r.ok) return;
  if (r.reason === "unavailable") {
    throw new CoordinatorError("rate_limited", r.message, {
      wireCode: "rate_limit_exceeded",
      retryAfterS: r.retryAfterMs / 1000,
    });
  }
  throw new CoordinatorError("insufficient_quota", r.message, { wireCode: "insufficient_quota" });
}

const promptMessages = (n: NormalizedRequest): unknown[] =>
  Array.isArray(n.body.messages) ? (n.body.messages as unknown[]) : [];
const promptTools = (n: NormalizedRequest): unknown[] | undefined =>
  Array.isArray(n.body.tools) ? (n.body.tools as unknown[]) : undefined;

/**
 * Money and rate budgets follow the dispatcher's result: a completed request pays its exact usage; a failure
 * after commit, or a consumer hang-up after content (streaming or buffered), pays for what was produced (the
 * result then names who served it and the partial usage); a failure before commit, including a buffered answer
 * whose provider failed mid-generation and was replaced, pays nothing.
 */
export async function settleRequest(
  deps: BillingDeps,
  requestId: string,
  build: string,
  n: NormalizedRequest,
  r: DispatchResult,
  ticket: RateTicket,
  startedAtMs: number,
): Promise<void> {
  const now = () => deps.clock.nowMs();
  if (r.kind === "completed") {
    deps.limiter.reconcile(
      ticket,
      { inputTokens: r.usage.promptTokens, outputTokens: r.usage.completionTokens },
      now(),
    );
    deps.onFinished?.(build, r.usage, n.traits.maxTokens, now() - startedAtMs);
    await deps.ledger
      .settle({
        requestId,
        providerId: r.providerId,
        providerAccountId: r.providerAccountId,
        model: build,
        usage: r.usage,
      })
      .catch((e) => {
        deps.log?.("settlement failed (the ledger retries it)", { request_id: requestId, error: String(e) });
      });
    return;
  }
  if (r.served && r.partial) {
    deps.limiter.reconcile(
      ticket,
      { inputTokens: r.partial.promptTokens, outputTokens: r.partial.completionTokens, representative: false },
      now(),
    );
    await deps.ledger
      .settle({
        requestId,
        providerId: r.served.providerId,
        providerAccountId: r.served.providerAccountId,
        model: build,
        usage: r.partial,
      })
      .catch((e) => deps.log?.("partial settlement failed", { request_id: requestId, error: String(e) }));
    return;
  }
  deps.limiter.reconcile(ticket, { inputTokens: 0, outputTokens: 0, representative: false }, now());
  await deps.ledger
    .release(requestId, r.kind)
    .catch((e) => deps.log?.("release failed", { request_id: requestId, error: String(e) }));
}
