/**
 * The cold-load gate: may this provider load `model` now for this request? Aligned with the provider's own
 * load rule so the coordinator never sends a cold request to a Mac that will refuse the load (load-test
 * report, Issue 4):
 *
 * 1. A recent load refusal for (provider, model) puts it on a cooldown ({@link HealthGates.isLoadCooledDown}).
 * 2. Slots: at most `maxModelSlots` loaded models; a full provider may only replace a model with no active
 *    or pending work (we never evict a busy model).
 * 3. Memory: prefer the provider's `freeForLoadGb` (its max loadable weight in padded GiB, already net of its
 *    reserves, counting idle models as evictable): padded weights must fit. Otherwise weights × 3 ≤ usable
 *    memory (the provider's rule, {@link couldEverLoad}) AND weights + KV for this request + weights of busy
 *    models + OS reserve ≤ total.
 *
 * A policy plugged into the scheduler's seam (`SchedulerOptions.policy`, the simulator's baseline) replaces the memory
 * rule with its own `fitsForLoad`.
 */
import type { ProviderView } from "../registry/types.js";
import type { HealthGates } from "./types.js";
import { GIB, type SchedulerOptions } from "./scheduler-options.js";

export type MemoryGateOptions = Pick<
  SchedulerOptions,
  "policy" | "osReserveGb" | "gpuMemoryFraction" | "providerLoadFactor" | "loadPaddingFactor"
>;

/**
 * Could `p` load a model of `weightsBytes` at all, with nothing else resident? The provider's rule (weights × 3)
 * against the memory it can use (the unified-memory cap and the OS reserve: the same usable-memory formula as
 * admission's KV budget), not against the raw total, which would call a 48 GB Mac able to host 16 GB of weights
 * that the Mac itself refuses. Decides "queue, one may free up" vs "no connected Mac can ever load this".
 */
export function couldEverLoad(
  p: ProviderView,
  weightsBytes: number,
  o: Pick<SchedulerOptions, "osReserveGb" | "gpuMemoryFraction" | "providerLoadFactor">,
): boolean {
  const total = p.totalMemoryGb || p.hardware.memoryGb;
  const usableGb = Math.min(total * o.gpuMemoryFraction, total - o.osReserveGb);
  return (weightsBytes / GIB) * o.providerLoadFactor <= usableGb;
}

export type ColdLoadResult =
  | { ok: true; evicts: string | undefined }
  | { ok: false; reason: "load_cooled_down" | "already_loading" | "slots_busy" | "memory" };

/** A slot is busy if the provider reports work on it or the coordinator has in-flight requests for it. */
export function modelIsBusy(p: ProviderView, model: string): boolean {
  const slot = p.slots.find((s) => s.model === model);
  if (slot && (slot.numRunning > 0 || slot.numWaiting > 0 || slot.state === "loading")) return true;
  for (const r of p.inflight.values()) if (r.model === model) return true;
  return p.pendingLoads.has(model);
}

/**
 * True when `model`'s idle slot on `p` may already be gone: the coordinator sent the Mac a load of another model
 * that needs a slot, and the Mac evicts an idle model to make room. Until the next heartbeat shows which, the
 * slot still looks warm; a request routed to it would be refused by the Mac and cost a round trip and a load
 * cooldown (the routing simulator caught the kv-aware policy doing so right after the warm-pool planner's loads).
 */
export function evictionPending(p: ProviderView, model: string): boolean {
  if (p.pendingLoads.size === 0 || modelIsBusy(p, model)) return false;
  let held = 0;
  for (const s of p.slots) if (s.state !== "crashed" && !p.pendingLoads.has(s.model)) held++;
  return held + p.pendingLoads.size > Math.max(1, p.maxModelSlots || 1);
}

/**
 * Decides whether `p` can cold-load a model of `weightsBytes` for a request needing `requestKvTokens` of KV
 * at `kvBytesPerToken` (0 = unknown: the KV term is skipped and the 3× rule carries the margin).
 */
export function canColdLoad(
  p: ProviderView,
  model: string,
  weightsBytes: number,
  requestKvTokens: number,
  kvBytesPerToken: number,
  nowMs: number,
  health: Pick<HealthGates, "isLoadCooledDown">,
  weightsBytesOf: (model: string) => number,
  options: MemoryGateOptions,
): ColdLoadResult {
  if (health.isLoadCooledDown(p.id, model, nowMs)) return { ok: false, reason: "load_cooled_down" };
  if (p.pendingLoads.has(model)) return { ok: false, reason: "already_loading" };
  const loaded = p.slots.filter((s) => s.state !== "crashed" && s.model !== model);
  const maxSlots = Math.max(1, p.maxModelSlots || 1);
  let evicts: string | undefined;
  if (loaded.length + p.pendingLoads.size >= maxSlots) {
    // Replace the least useful idle model; never a busy one.
    const idle = loaded.filter((s) => !modelIsBusy(p, s.model));
    if (idle.length === 0 || p.pendingLoads.size >= maxSlots) return { ok: false, reason: "slots_busy" };
    evicts = idle.sort((a, b) => weightsBytesOf(b.model) - weightsBytesOf(a.model))[0]!.model;
  }
  const total = p.totalMemoryGb || p.hardware.memoryGb;
  const weightsGb = weightsBytes / GIB;
  if (options.policy)
    return options.policy.fitsForLoad(total, weightsBytes) ? { ok: true, evicts } : { ok: false, reason: "memory" };
  if (p.freeForLoadGb !== undefined) {
    return weightsGb * options.loadPaddingFactor <= p.freeForLoadGb
      ? { ok: true, evicts }
      : { ok: false, reason: "memory" };
  }
  if (!couldEverLoad(p, weightsBytes, options)) return { ok: false, reason: "memory" };
  let residentGb = 0;
  for (const s of loaded)
    if (s.model !== evicts && modelIsBusy(p, s.model)) residentGb += weightsBytesOf(s.model) / GIB;
  const kvGb = (requestKvTokens * kvBytesPerToken) / GIB;
  return weightsGb + kvGb + residentGb + options.osReserveGb <= total
    ? { ok: true, evicts }
    : { ok: false, reason: "memory" };
}
