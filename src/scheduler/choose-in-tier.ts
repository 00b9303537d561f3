/**
 * The last step of pick.ts's `pick`: among one tier's candidates, the lowest expected completion time, with near-ties
 * (within `nearTieFraction`, at least `nearTieMinMs`) broken by cache affinity (rendezvous hashing on
 * {@link fnv1a}) when the request has an `affinityKey`, else by load, then randomly; `avoidVersion` is a soft
 * filter. In a cluster, a request without an affinity key is first held to the Macs this process owns unless a
 * mirror (another coordinator's Mac) is clearly cheaper ({@link ownedWithinMargin}): the forward costs a NATS round
 * trip and CPU on two nodes, and a mirror's figures are a snapshot's. Kept apart from pick.ts because it is the one
 * tie-breaking policy, pure given the candidates, the request and a random source; pick.ts decides which
 * candidates form a tier.
 */
import type { ProviderView } from "../registry/types.js";
import type { SchedulerOptions } from "./scheduler-options.js";
import type { PickReason, RouteRequest } from "./types.js";

/** One provider that can take the request, with what choosing it costs. */
export interface Candidate {
  p: ProviderView;
  costMs: number;
  load: number;
  cold: boolean;
}

/** Lowest cost within a tier, with the near-tie rules of pick.ts's module comment. */
export function chooseInTier(
  cands: Candidate[],
  req: RouteRequest,
  ctx: { random: () => number },
  o: Readonly<SchedulerOptions>,
): { c: Candidate; reason: PickReason } | undefined {
  if (cands.length === 0) return undefined;
  if (req.avoidVersion !== undefined) {
    const other = cands.filter((c) => c.p.version !== req.avoidVersion);
    if (other.length > 0) cands = other;
  }
  let best = Infinity;
  for (const c of cands) best = Math.min(best, c.costMs);
  const window = Math.max(best * o.nearTieFraction, o.nearTieMinMs);
  let near = cands.filter((c) => c.costMs <= best + window);
  const affinity = req.affinityKey !== undefined && req.affinityKey !== "";
  // Affinity stays first: a warm prompt cache saves more prefill than a forward costs.
  if (!affinity) near = ownedWithinMargin(cands, best, window, o) ?? near;
  if (near.length === 1) return { c: near[0]!, reason: "warm" };
  if (affinity) {
    let top = near[0]!;
    let topScore = -1;
    for (const c of near) {
      const s = fnv1a(`${req.affinityKey}\u0000${c.p.id}`);
      if (s > topScore) {
        topScore = s;
        top = c;
      }
    }
    return { c: top, reason: "affinity" };
  }
  let minLoad = Infinity;
  for (const c of near) minLoad = Math.min(minLoad, c.load);
  const leastLoaded = near.filter((c) => c.load <= minLoad + 1e-9);
  const i = Math.min(leastLoaded.length - 1, Math.floor(ctx.random() * leastLoaded.length));
  return { c: leastLoaded[i]!, reason: "warm" };
}

/**
 * In a cluster, the near-ties among the owned Macs when the best of them costs at most (1 + forwardMarginFraction)
 * times the best candidate's cost (or lies within the near-tie window); undefined when a mirror is cheaper than
 * that (with 0.5: below two thirds of the best owned Mac's cost), when no Mac is owned, and when none is a mirror
 * (one process: the plain near-ties stand, and the pick's hot path pays one scan, not a second filter). A mirror's cost comes from a snapshot up to CLUSTER_SNAPSHOT_MS
 * old, while an owned Mac's is exact; when load moves faster than snapshots, the mirrors' costs scatter around the
 * owned Macs' and a near-tie window alone sent a share of an even load to another node for a difference that was
 * mostly the snapshot's age (README, Running several coordinators, for the measurements).
 */
function ownedWithinMargin(
  cands: Candidate[],
  best: number,
  window: number,
  o: Readonly<SchedulerOptions>,
): Candidate[] | undefined {
  let ownBest = Infinity;
  let mirrors = false;
  for (const c of cands)
    if (c.p.remote === true) mirrors = true;
    else ownBest = Math.min(ownBest, c.costMs);
  if (!mirrors || ownBest === Infinity || ownBest > best + Math.max(window, best * o.forwardMarginFraction))
    return undefined;
  const ownWindow = Math.max(ownBest * o.nearTieFraction, o.nearTieMinMs);
  return cands.filter((c) => c.p.remote !== true && c.costMs <= ownBest + ownWindow);
}

/** 32-bit FNV-1a of a string (UTF-16 code units); deterministic across processes for rendezvous hashing. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
