/**
 * Where a request may go, decided before any money or rate budget is touched: the public name resolved to a
 * build and its pools (the coordinator's preflight), under the caller's own routing constraints (X-Route,
 * provider_serials), and the verdicts the consumer hears at once (429 pool_exhausted, 404, 400 context, 503).
 */
import { CoordinatorError } from "../errors/coordinator-error.js";
import { shapeOf, type NormalizedRequest } from "../inference/types.js";
import type { Principal } from "../accounts/types.js";
import type { PickResult, RouteRequest } from "../scheduler/types.js";
import { count } from "../telemetry/metrics.js";
import type { RouteConstraints } from "./route-constraints.js";

/** What routing decided before admission: the concrete build, its pools, and the decision for it. */
export interface Preflight {
  build: string;
  pools?: ReadonlySet<string>;
  decision: PickResult;
}

/** Routing as the request will be dispatched: the build and pools, and the caller's own constraints. */
export interface Target extends Preflight {
  /** Only the caller's own machines, priced at zero (X-Route: self, or prefer when one of them can take it). */
  selfServed: boolean;
  serials?: ReadonlySet<string>;
  callerAccountId: string;
  /** `prefer` gone public: the paid route never uses the caller's own machines. */
  avoidOwn: boolean;
}

/**
 * Fails fast (before any money or rate budget is touched) when the request cannot be served at all, or when its
 * model pool is exhausted: an uptime-neutral 429 `pool_exhausted` with the pool's Retry-After, so an aggregator
 * retries or fails over instead of waiting on a full pool (the previous build of an alias was tried first).
 * `X-Route: prefer` asks the caller's own machines first and goes public only when none of them can take the
 * request now; `self` never goes public, and an impossible constraint is a 503 at once.
 */
export function routeTarget(
  preflight: (req: RouteRequest) => Preflight,
  requestId: string,
  n: NormalizedRequest,
  principal: Principal,
  c: RouteConstraints,
): Target {
  const base: RouteRequest = {
    requestId,
    model: n.model,
    traits: n.traits,
    shape: shapeOf(n.traits),
    exclude: new Set(),
    callerAccountId: principal.accountId,
  };
  if (c.serials !== undefined) base.allowedSerials = c.serials;
  const target = (p: Preflight, selfServed: boolean, avoidOwn: boolean): Target => ({
    ...p,
    selfServed,
    avoidOwn,
    callerAccountId: principal.accountId,
    ...(c.serials !== undefined ? { serials: c.serials } : {}),
  });
  if (c.mode !== "public") {
    const own = preflight({ ...base, pinnedAccountId: principal.accountId });
    if (c.mode === "self" || own.decision.kind === "picked") return target(checked(own, n), true, false);
    return target(checked(preflight({ ...base, avoidAccountId: principal.accountId }), n), false, true);
  }
  return target(checked(preflight(base), n), false, false);
}

/** The preflight verdict as the consumer hears it: the Preflight itself when the request may proceed. */
function checked(p: Preflight, n: NormalizedRequest): Preflight {
  const d = p.decision;
  if (d.kind === "queue" && d.reason === "pool_exhausted") {
    count("routing.pool_exhausted", { model: n.model });
    throw new CoordinatorError(
      "rate_limited",
      `${n.model}: every Mac of this model's pool is busy; retry after the Retry-After interval or use another provider`,
      {
        wireCode: "pool_exhausted",
        retryAfterS: Math.max(1, Math.ceil(d.retryAfterMs / 1000)),
      },
    );
  }
  if (d.kind !== "reject") return p;
  count("routing.preflight_reject", { model: n.model, code: d.code });
  if (d.code === "model_not_found")
    throw new CoordinatorError("model_not_found", d.message, { param: "model", wireCode: "model_not_found" });
  if (d.code === "context_overflow")
    throw new CoordinatorError("invalid_request", d.message, {
      param: "messages",
      wireCode: "context_length_exceeded",
    });
  throw new CoordinatorError("model_unavailable", d.message, { wireCode: "model_unavailable", retryAfterS: 30 });
}
