/**
 * The ONE gate function shared by selection, preflight and the final admit, so they cannot drift (the Go
 * coordinator's `providerPassesRoutingGatesLockedEx` lesson). A rejection comes back as data with a reason,
 * so preflight can tell the client *why* ("no vision-capable build connected").
 *
 * Gates are yes/no facts about (provider, request). Capacity (budget, concurrency, memory for a cold load)
 * is not a gate: see admission.ts and memory-gate.ts.
 */
import type { ProviderModel, ProviderView } from "../registry/types.js";
import type { HealthGates, RouteRequest } from "./types.js";
import type { SchedulerOptions } from "./scheduler-options.js";
import { meetsFloor } from "../util/version.js";

/** Why a provider cannot take a request at all. */
export type GateReason =
  | "not_serving" // the model is not among the provider's builds
  | "no_vision_build" // the request has media and the build is text-only
  | "template_broken" // the build's chat template failed its self-check: fenced for every shape
  | "tools_version" // provider below the tools version floor (and the floor is not waived)
  | "context_too_small" // prompt + minimum output exceed the build's context
  | "draining" // provider finishing its work before an update
  | "pinned_account" // self-route: the provider belongs to someone else
  | "serial_not_allowed" // the request names other machines (provider_serials)
  | "private_machine" // the provider serves only its owner's account, and the caller is someone else
  | "own_machine" // X-Route: prefer gone public: the caller's own machines are not used for the paid route
  | "excluded" // already failed or racing this request
  | "thermal_critical" // the machine is throttling hard
  | "cooled_down" // (provider, model, shape) error cooldown or node-health breaker open
  | "other_pool" // pools on: assigned to another model's pool (and not safely reassignable)
  | "pool_unassigned"; // pools on: no heartbeat yet, so no pool (seeded from what the first one reports)

/** Reasons that pass by themselves (the provider may come back within seconds): worth queueing for. */
export const transientGateReasons: ReadonlySet<GateReason> = new Set<GateReason>([
  "draining",
  "thermal_critical",
  "pool_unassigned",
]);

/** Reasons that are about pool membership, not about what the provider can do. */
export const poolGateReasons: ReadonlySet<GateReason> = new Set<GateReason>(["other_pool", "pool_unassigned"]);

export type GateResult = { ok: true; build: ProviderModel } | { ok: false; reason: GateReason };

/** The slice of options the gate reads. */
export type GateOptions = Pick<
  SchedulerOptions,
  "toolsVersionFloor" | "toolsFloorWaivedByNormalization" | "minOutputTokens"
>;

/**
 * Checks every structural and health gate for one provider and request. Cheap checks first; the health
 * interface is consulted last.
 */
export function checkGates(
  p: ProviderView,
  req: RouteRequest,
  nowMs: number,
  health: HealthGates,
  options: GateOptions,
): GateResult {
  const build = p.models.find((m) => m.id === req.model);
  if (!build) return { ok: false, reason: "not_serving" };
  if (req.exclude.has(p.id)) return { ok: false, reason: "excluded" };
  if (req.pinnedAccountId !== undefined && p.accountId !== req.pinnedAccountId)
    return { ok: false, reason: "pinned_account" };
  if (req.allowedSerials !== undefined && !req.allowedSerials.has(p.serial))
    return { ok: false, reason: "serial_not_allowed" };
  if (p.privateOnly === true && p.accountId !== req.callerAccountId) return { ok: false, reason: "private_machine" };
  if (req.avoidAccountId !== undefined && p.accountId === req.avoidAccountId)
    return { ok: false, reason: "own_machine" };
  // An explicit false fences the build for every shape; undefined (older providers) is allowed.
  if (build.templateRenderOk === false) return { ok: false, reason: "template_broken" };
  if (req.traits.requiresVision && !build.isVision) return { ok: false, reason: "no_vision_build" };
  if (
    req.traits.hasTools &&
    !options.toolsFloorWaivedByNormalization &&
    !meetsFloor(p.version, options.toolsVersionFloor)
  ) {
    return { ok: false, reason: "tools_version" };
  }
  const minOut = Math.min(options.minOutputTokens, Math.max(1, req.traits.maxTokens));
  if (build.contextLength > 0 && req.traits.estimatedPromptTokens + minOut > build.contextLength) {
    return { ok: false, reason: "context_too_small" };
  }
  // After the capability gates, so a provider of another pool reports what it could not do before where it
  // belongs: a capability gap stays a 503, never a retryable pool_exhausted (model-pools review finding).
  const pool = poolGate(p, req);
  if (pool !== undefined) return { ok: false, reason: pool };
  if (p.status === "draining") return { ok: false, reason: "draining" };
  if (p.thermal === "critical") return { ok: false, reason: "thermal_critical" };
  if (health.isCooledDown(p.id, req.model, req.shape, nowMs)) return { ok: false, reason: "cooled_down" };
  return { ok: true, build };
}

/**
 * The pool gate: undefined when the request may use the provider. A request routed by its caller (self-route,
 * provider_serials) carries no pool constraint, and a private machine is never pooled. A provider with no pool
 * yet (no heartbeat) is never used — seeding it from its advertised models would pin it to whichever it lists first. A provider of
 * another pool is used only on a reassigning pass and only if {@link isReassignable} or named spare by the
 * request (an idle member of a pool that keeps another idle loaded one: model-pools.ts's `spareProviders`).
 */
export function poolGate(p: ProviderView, req: RouteRequest): GateReason | undefined {
  const c = req.pools;
  // A private machine is its owner's alone (the private gate ran first): no pool applies to it.
  if (c === undefined || p.privateOnly === true) return undefined;
  if (p.pool === undefined) return "pool_unassigned";
  if (c.keys.has(p.pool)) return undefined;
  return c.reassign && (isReassignable(p) || c.spare?.has(p.id) === true) ? undefined : "other_pool";
}

/**
 * Whether moving the provider to another pool takes nothing from anyone: no request in flight, no model
 * resident or loading (a slot in any state but crashed, a reported warm model), no load pending, not draining.
 * A pending load pins the provider to the pool it is loading for (review finding). Checked in the same
 * synchronous step as the dispatch that follows the pick, so no window opens between check and use.
 */
export function isReassignable(p: ProviderView): boolean {
  if (p.status === "draining" || p.inflight.size > 0 || p.pendingLoads.size > 0 || p.warmModels.length > 0)
    return false;
  return p.slots.every((s) => s.state === "crashed");
}

const reasonText: Record<GateReason, string> = {
  not_serving: "no connected provider serves it",
  no_vision_build: "no vision-capable build is connected",
  template_broken: "every connected build has a broken chat template",
  tools_version: "no connected provider is recent enough for tool calls",
  context_too_small: "the prompt does not fit the context of any connected build",
  draining: "every capable provider is draining",
  pinned_account: "none of your own machines serves it",
  serial_not_allowed: "none of the machines named in provider_serials serves it",
  private_machine: "every capable provider serves only its owner's account",
  own_machine: "only your own machines serve it, and they are busy",
  excluded: "every capable provider already failed this request",
  thermal_critical: "every capable provider is overheating",
  other_pool: "every capable provider is serving another model's pool",
  pool_unassigned: "every capable provider has just connected and has no pool yet",
  cooled_down: "every capable provider is cooling down after errors for this request shape",
};

/**
 * A client-facing sentence for a set of gate rejections: the most specific reason that applies to the
 * providers that serve the model at all (e.g. "gemma-4-26b: no vision-capable build is connected").
 */
export function describeRejections(model: string, reasons: readonly GateReason[]): string {
  const relevant = reasons.filter((r) => r !== "not_serving");
  if (relevant.length === 0) return `${model}: ${reasonText.not_serving}`;
  // Report the reason that blocks the most providers: that is what would have to change.
  const counts = new Map<GateReason, number>();
  for (const r of relevant) counts.set(r, (counts.get(r) ?? 0) + 1);
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  return `${model}: ${reasonText[top]}`;
}
