/**
 * Drives open-loop request load through one or more rate limiters ("processes") and measures what they admitted:
 * the largest count in any sliding window, to check against a token bucket's `burst + rate × window`. Time and
 * waiting are injected, so the same driver runs on a FakeClock (unit) and on the wall clock (integration).
 */
import type { KeyedRateLimiter } from "../../src/ratelimit/limiter.js";
import type { AdmitInput } from "../../src/ratelimit/types.js";

export interface LoadOptions {
  nodes: readonly KeyedRateLimiter[];
  /** Which node serves request `i`. */
  pick: (i: number) => number;
  /** Offered requests per second. */
  offeredPerSec: number;
  durationMs: number;
  /** Requests of one step are sent together (concurrently). */
  stepMs: number;
  input: AdmitInput;
  now: () => number;
  wait: (ms: number) => Promise<void>;
}

export interface LoadResult {
  /** Admission times, ms. */
  admitted: number[];
  /** Admissions per node. */
  perNode: number[];
  offered: number;
}

export async function driveLoad(o: LoadOptions): Promise<LoadResult> {
  const start = o.now();
  const admitted: number[] = [];
  const perNode = o.nodes.map(() => 0);
  let sent = 0;
  for (;;) {
    const elapsed = o.now() - start;
    if (elapsed >= o.durationMs) break;
    const due = Math.floor((elapsed * o.offeredPerSec) / 1000) + 1;
    const batch: Promise<void>[] = [];
    for (; sent < due; sent++) {
      const node = o.pick(sent);
      batch.push(
        o.nodes[node]!.admitWaiting(o.input, o.now).then((r) => {
          if (!r.ok) return;
          admitted.push(o.now());
          perNode[node]!++;
        }),
      );
    }
    await Promise.all(batch);
    await o.wait(o.stepMs);
  }
  admitted.sort((a, b) => a - b);
  return { admitted, perNode, offered: sent };
}

/** The most admissions in any window of `windowMs` (closed at both ends). */
export function maxInWindow(times: readonly number[], windowMs: number): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while (times[hi]! - times[lo]! > windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}
