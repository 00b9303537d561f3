/**
 * A hand-written fake of the {@link LimitLeaseSource} port: the arithmetic of `limit_draw` (migration 0005) on a
 * Map, so the leased store can be unit-tested with a fake clock. `failing` makes every call reject (PostgreSQL
 * down); `draws` counts exchanges per key, `drawTimes` records when.
 */
import type { DrawRequest, DrawResult, LimitLeaseSource } from "../../src/ratelimit/lease-source.js";

interface Row {
  rate: number;
  burst: number;
  level: number;
  outstanding: number;
  updatedMs: number;
  leases: Map<string, { held: number; updatedMs: number }>;
}

export class FakeLeaseSource implements LimitLeaseSource {
  readonly rows = new Map<string, Row>();
  readonly draws = new Map<string, number>();
  /** `nowMs` of every exchange, in order. */
  readonly drawTimes: number[] = [];
  failing = false;

  async draw(r: DrawRequest): Promise<DrawResult> {
    if (this.failing) throw new Error("connect ECONNREFUSED (fake)");
    this.draws.set(r.key, (this.draws.get(r.key) ?? 0) + 1);
    this.drawTimes.push(r.nowMs);
    let b = this.rows.get(r.key);
    if (!b) {
      b = {
        rate: r.limits.ratePerSec,
        burst: r.limits.burst,
        level: r.limits.burst,
        outstanding: 0,
        updatedMs: r.nowMs,
        leases: new Map(),
      };
      this.rows.set(r.key, b);
    }
    const oldHeld = b.leases.get(r.holderId)?.held ?? 0;
    const diff = b.outstanding - oldHeld;
    const others = diff < 1e-6 ? 0 : diff;
    const t = Math.max(b.updatedMs, r.nowMs);
    let lvl = b.level;
    if (b.rate > 0 && lvl < b.burst - b.outstanding)
      lvl = Math.min(b.burst - b.outstanding, lvl + ((t - b.updatedMs) * b.rate) / 1000);
    let kept: number;
    if (r.release) {
      kept = 0;
      lvl += Math.min(r.remaining, oldHeld);
    } else {
      kept = Math.min(Math.max(0, r.remaining), oldHeld);
      lvl += Math.min(0, r.remaining);
    }
    if (r.returned > 0) lvl = Math.max(lvl, Math.min(b.burst - others - kept, lvl + r.returned));
    lvl = Math.min(lvl, r.limits.burst);
    let g = 0;
    if (!r.release && r.wantUnits > 0 && lvl + 1e-6 >= r.minUnits) {
      g = Math.max(r.minUnits, Math.min(r.wantUnits, lvl));
      lvl -= g;
    }
    b.rate = r.limits.ratePerSec;
    b.burst = r.limits.burst;
    b.level = lvl;
    b.outstanding = others + kept + g;
    b.updatedMs = t;
    if (kept + g > 0) b.leases.set(r.holderId, { held: kept + g, updatedMs: r.nowMs });
    else b.leases.delete(r.holderId);
    return { granted: g, kept, level: lvl, updatedMs: t };
  }

  async reapStale(nowMs: number, staleMs: number): Promise<number> {
    if (this.failing) throw new Error("connect ECONNREFUSED (fake)");
    let n = 0;
    for (const b of this.rows.values()) {
      for (const [holder, l] of b.leases) {
        if (l.updatedMs < nowMs - staleMs) {
          b.outstanding = Math.max(0, b.outstanding - l.held);
          b.leases.delete(holder);
          n++;
        }
      }
    }
    return n;
  }
}
