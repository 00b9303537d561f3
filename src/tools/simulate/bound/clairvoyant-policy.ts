/**
 * The clairvoyant bound (issue 18): what the fleet could do for a workload if routing knew everything. It is not
 * an algorithm to ship — nothing real knows a request's output length before it runs — but the yardstick the
 * shipped policy is measured against. It knows each request's true output length and every Mac's true speed
 * (thermal throttling included) and state (its prefill queue, its running requests' remaining tokens), and
 * pre-warms perfectly: a load it needs finishes exactly when the Mac is needed, i.e. a cold Mac starts serving at
 * once, provided the load could physically have happened — the provider's memory rule and slots allow it, an
 * evicted model had been idle for the load's duration, and no more loads overlap than the fleet runs in parallel
 * ({@link ClairvoyantOptions.parallelLoads}). Otherwise a cold Mac costs its real load time.
 *
 * Per request, greedily: the Macs on which the request meets the service level (predicted first token ≤ 10 s,
 * and every stream on the Mac, this one included, still decodes ≥ 20 tok/s) come first, then those that keep
 * the decode floor only, then the rest; within a rank, the least marginal cost — the request's own completion
 * (first token + its true output at the Mac's per-stream rate with it added) plus the time it adds to the
 * Mac's other requests over the tokens they share (ties: fewer streams, then id). It never queues at the
 * coordinator and never refuses while a Mac can hold the model. A greedy choice with perfect information is an
 * estimate of the limit, not a proven optimum: it can be beaten in principle (e.g. by holding a fast Mac back
 * for a later long prompt), and on a closed-loop workload a policy that finishes requests sooner also sees
 * more of them.
 */
import { concurrentDecodeTps } from "../../fleet/mac-performance.js";
import { SERVICE_LEVEL } from "../service-level.js";
import type { SimProvider } from "../sim-provider.js";

/** A request as the bound sees it: with its true output length. */
export interface BoundRequest {
  model: string;
  promptTokens: number;
  outputTokens: number;
}

export interface ClairvoyantOptions {
  /** Loads the fleet runs at once (the warm-pool planner's `maxPendingLoads` default). */
  parallelLoads: number;
}

export const defaultClairvoyantOptions: Readonly<ClairvoyantOptions> = Object.freeze({ parallelLoads: 16 });

/** The bound's decision for one request. */
export interface ClairvoyantChoice {
  mac: SimProvider;
  /** Predicted arrival-to-first-token from now, ms. */
  firstTokenMs: number;
  /** The model is not loaded there: the bound pre-warmed it (ready now). */
  prewarmed: boolean;
  /** The model is not loaded there and could not have been pre-warmed: a real load starts now. */
  loads: boolean;
  meetsServiceLevel: boolean;
}

/** A Mac the bound may use for `model`: online, with the model on disk and room under the provider's rule. */
export function canHost(mac: SimProvider, model: string): boolean {
  return mac.online && mac.spec.models.includes(model) && mac.fitsMemory(model);
}

/**
 * Predicted time from now to the request's first token on `mac` (undefined when it cannot host it now):
 * load (0 when loaded or pre-warmed) plus the provider's admission wait, or the admitted prefills queued ahead
 * if longer (they run during the load), then the prefills of requests it holds unadmitted, then its own
 * prefill, at the Mac's true speed.
 */
export function predictFirstTokenMs(
  mac: SimProvider,
  req: BoundRequest,
  nowMs: number,
  prewarm: boolean,
): { ms: number; prewarmed: boolean; loads: boolean } | undefined {
  if (!canHost(mac, req.model)) return undefined;
  const remaining = mac.loadRemainingMs(req.model, nowMs);
  let loadMs = remaining ?? 0;
  let prewarmed = false;
  let loads = false;
  if (remaining === undefined) {
    if (prewarm && mac.couldHavePrewarmed(req.model, nowMs)) prewarmed = true;
    else if (mac.canLoad(req.model)) {
      loads = true;
      loadMs = mac.loadMs(req.model);
    } else return undefined;
  }
  const wait = remaining === 0 ? mac.admissionWaitMs(req.model, req.promptTokens) : 0;
  const own = (req.promptTokens / (mac.prefillTps(req.model) * mac.speedFactor)) * 1000;
  // Requests it holds unadmitted (behind a load or the admission limits) prefill before this one.
  return { ms: Math.max(loadMs + wait, mac.prefillBacklogMs()) + mac.waitingPrefillMs() + own, prewarmed, loads };
}

/**
 * Whether every stream on `mac` still decodes at the service level's rate with this request added (the
 * concurrency law over all the Mac's streams, at the slowest of its busy models' true solo rates).
 */
export function keepsDecodeFloor(mac: SimProvider, model: string): boolean {
  const n = mac.streams() + mac.waitingCount() + 1;
  for (const m of new Set([...mac.busyModels(), model])) {
    if (concurrentDecodeTps(mac.soloTps(m) * mac.speedFactor, n) < SERVICE_LEVEL.decodeTps) return false;
  }
  return true;
}

/**
 * The request's marginal cost on `mac`, ms: its own completion (first token, then its true output at the
 * per-stream rate with it added) plus the time the one more stream adds to each request already there, over
 * the tokens they would decode side by side.
 */
export function marginalCostMs(mac: SimProvider, req: BoundRequest, firstTokenMs: number): number {
  const n = mac.streams() + mac.waitingCount();
  const rate = (m: string, streams: number) => concurrentDecodeTps(mac.soloTps(m) * mac.speedFactor, streams);
  let cost = firstTokenMs + (req.outputTokens / rate(req.model, n + 1)) * 1000;
  for (const o of mac.remainingOutputs()) {
    const shared = Math.min(o.tokens, req.outputTokens);
    cost += shared * (1 / rate(o.model, n + 1) - 1 / rate(o.model, n)) * 1000;
  }
  return cost;
}

/** Loads started (pre-warmed or real) with the times they occupy, to bound how many overlap. */
export class LoadWindow {
  readonly #loads: { fromMs: number; toMs: number }[] = [];

  /** Loads overlapping `[fromMs, toMs)`. */
  overlapping(fromMs: number, toMs: number): number {
    let n = 0;
    for (const l of this.#loads) if (l.fromMs < toMs && fromMs < l.toMs) n++;
    return n;
  }

  record(fromMs: number, toMs: number): void {
    this.#loads.push({ fromMs, toMs });
  }

  /** Forgets loads over before `ms` (they can overlap nothing later). */
  prune(ms: number): void {
    for (let i = this.#loads.length - 1; i >= 0; i--) if (this.#loads[i]!.toMs <= ms) this.#loads.splice(i, 1);
  }
}

/** See the module comment. Undefined when no Mac can host the request now. */
export function chooseClairvoyant(
  macs: readonly SimProvider[],
  req: BoundRequest,
  nowMs: number,
  loads: LoadWindow,
  options: Readonly<ClairvoyantOptions> = defaultClairvoyantOptions,
): ClairvoyantChoice | undefined {
  loads.prune(nowMs - 60 * 60_000);
  let best: { c: ClairvoyantChoice; rank: number; cost: number; streams: number } | undefined;
  for (const mac of macs) {
    // A pre-warm occupies [now − load time, now): the fleet must have had a parallel load free then.
    const loadMs = canHost(mac, req.model) ? mac.loadMs(req.model) : 0;
    const prewarm = loads.overlapping(nowMs - loadMs, nowMs) < options.parallelLoads;
    const p = predictFirstTokenMs(mac, req, nowMs, prewarm);
    if (!p) continue;
    const floor = keepsDecodeFloor(mac, req.model);
    const meets = floor && p.ms <= SERVICE_LEVEL.firstTokenMs;
    // 0: meets the service level; 1: keeps the decode floor only; 2: neither.
    const rank = meets ? 0 : floor ? 1 : 2;
    const streams = mac.streams();
    const c: ClairvoyantChoice = {
      mac,
      firstTokenMs: p.ms,
      prewarmed: p.prewarmed,
      loads: p.loads,
      meetsServiceLevel: meets,
    };
    const cost = marginalCostMs(mac, req, p.ms);
    if (
      !best ||
      rank < best.rank ||
      (rank === best.rank &&
        (cost < best.cost ||
          (cost === best.cost && (streams < best.streams || (streams === best.streams && mac.id < best.c.mac.id)))))
    )
      best = { c, rank, cost, streams };
  }
  if (best?.c.prewarmed) {
    const l = best.c.mac.loadMs(req.model);
    loads.record(nowMs - l, nowMs);
  } else if (best?.c.loads) loads.record(nowMs, nowMs + best.c.mac.loadMs(req.model));
  return best?.c;
}
