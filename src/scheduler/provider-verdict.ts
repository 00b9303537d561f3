/**
 * "Why isn't my Mac getting traffic?" — the coordinator's own verdict on one machine, in plain words, for its
 * owner (`GET /v1/me/providers`). Pure: the registry's view of the machine (if connected), its identity's fence,
 * the health gates and the routing options in, a state, a routable flag and a reason out. The checks mirror the
 * shared gates (gates.ts) so the verdict cannot say "routable" about a machine routing would skip.
 */
import type { RequestShape } from "../inference/types.js";
import type { ProviderView } from "../registry/types.js";
import { meetsFloor } from "../util/version.js";
import type { GateOptions } from "./gates.js";

export type ProviderState = "offline" | "fenced" | "draining" | "connecting" | "idle" | "serving";

export interface ProviderVerdict {
  state: ProviderState;
  /** Whether routing would send this machine some request now (its own gates; capacity aside). */
  routable: boolean;
  /** The reason, e.g. "serving gpt-oss-20b", "excluded: chat template broken on build gemma-4-26b". */
  reason: string;
}

/** What the verdict reads of the health gates. */
export interface VerdictHealth {
  isBreakerOpen(providerId: string, nowMs: number): boolean;
  isShapeCooledDown(providerId: string, model: string, shape: RequestShape, nowMs: number): boolean;
  /** Errors that cool a (machine, model, shape), for the sentence. */
  readonly shapeStrikesToCool: number;
}

export interface VerdictInput {
  /** The connected session, if any. */
  provider: ProviderView | undefined;
  /** The identity's fence (the coordinator refused the machine), if any. */
  fenceReason: string | null;
  nowMs: number;
  health: VerdictHealth;
  options: Pick<GateOptions, "toolsVersionFloor" | "toolsFloorWaivedByNormalization">;
  /** Model pools on (MODEL_POOLS). */
  poolsOn: boolean;
}

const shapes: readonly RequestShape[] = ["base", "tools", "vision"];

/** See the module comment. The first blocking fact wins; caveats on a routable machine follow its state. */
export function providerVerdict(i: VerdictInput): ProviderVerdict {
  if (i.fenceReason !== null)
    return { state: "fenced", routable: false, reason: `excluded: fenced by the coordinator (${i.fenceReason})` };
  const p = i.provider;
  if (!p) return { state: "offline", routable: false, reason: "offline: not connected" };
  const activity: ProviderState = p.inflight.size > 0 ? "serving" : "idle";
  if (p.status === "draining")
    return { state: "draining", routable: false, reason: "draining: finishing its requests before an update" };
  if (p.thermal === "critical")
    return { state: activity, routable: false, reason: "excluded: overheating (thermal state critical)" };
  if (i.health.isBreakerOpen(p.id, i.nowMs))
    return {
      state: activity,
      routable: false,
      reason: "cooling down: too many errors across its requests; the coordinator retries it after a pause",
    };
  const builds = p.models.map((m) => m.id);
  if (builds.length === 0) return { state: activity, routable: false, reason: "excluded: it advertises no model" };
  const broken = p.models.filter((m) => m.templateRenderOk === false).map((m) => m.id);
  if (broken.length === builds.length)
    return { state: activity, routable: false, reason: `excluded: chat template broken on build ${broken.join(", ")}` };
  if (i.poolsOn && p.privateOnly !== true && p.pool === undefined) {
    return {
      state: "connecting",
      routable: false,
      reason: "connecting: waiting for its first heartbeat to join a model pool",
    };
  }

  const caveats: string[] = [];
  const cooled = coolings(p, i);
  if (cooled.length > 0)
    caveats.push(`cooling down after ${i.health.shapeStrikesToCool} errors on ${cooled.join(", ")}`);
  if (broken.length > 0) caveats.push(`excluded: chat template broken on build ${broken.join(", ")}`);
  if (!i.options.toolsFloorWaivedByNormalization && !meetsFloor(p.version, i.options.toolsVersionFloor)) {
    caveats.push(
      `excluded from tool calls: version ${p.version} is below the tools floor ${i.options.toolsVersionFloor}`,
    );
  }
  if (p.privateOnly === true) caveats.push("private: serves only your account");
  const all = [mainReason(p, i.poolsOn), ...caveats].join("; ");
  // Every (model, shape) it has cooled is still a routable machine for the rest, unless nothing is left.
  const everythingCooled = cooled.length === builds.length * shapes.length;
  return { state: activity, routable: !everythingCooled, reason: all };
}

function mainReason(p: ProviderView, poolsOn: boolean): string {
  if (p.inflight.size > 0) {
    const models = [...new Set([...p.inflight.values()].map((r) => r.model))].sort();
    return `serving ${models.join(", ")}`;
  }
  const loaded = [
    ...new Set([
      ...p.slots.filter((s) => s.state === "idle" || s.state === "running").map((s) => s.model),
      ...p.warmModels,
    ]),
  ].sort();
  if (loaded.length > 0) return `idle: ${loaded.join(", ")} loaded, no request for it right now`;
  if (p.pendingLoads.size > 0) return `loading ${[...p.pendingLoads.keys()].sort().join(", ")}`;
  if (p.privateOnly === true) return "idle: nothing loaded, waiting for your requests";
  return poolsOn && p.pool !== undefined
    ? `idle: its pool (${p.pool}) has enough warm Macs`
    : "idle: the network has enough warm Macs for its models";
}

/** "tools on gemma-4-26b" for each (model, shape) on an error cooldown. */
function coolings(p: ProviderView, i: VerdictInput): string[] {
  const out: string[] = [];
  for (const m of p.models)
    for (const s of shapes) if (i.health.isShapeCooledDown(p.id, m.id, s, i.nowMs)) out.push(`${s} on ${m.id}`);
  return out;
}
