/**
 * A per-session budget on the frames a provider may send unprompted, so a stranger's machine cannot make the
 * coordinator spend its event loop on a flood of valid-looking frames. Decisions come back as data:
 *
 * - `"ok"`: handle the frame;
 * - `"drop"`: ignore it (a strike was counted);
 * - `"disconnect"`: more than {@link MAX_STRIKES} strikes within {@link STRIKE_WINDOW_MS}: close the session.
 *   Sticky: every later frame gets `"disconnect"` too.
 *
 * Rules per kind:
 * - `heartbeat`: a token bucket refilling one heartbeat per {@link MIN_HEARTBEAT_GAP_FRACTION} × the interval
 *   the coordinator asked for, with a burst of {@link HEARTBEAT_BURST}: sustained, a heartbeat sooner than half
 *   the interval after the previous one is dropped (exactly at half is admitted). The burst is there because
 *   providers also heartbeat on events (a load starting, finishing, an unload: see fleet/simulated-mac.ts), and
 *   dropping those would hide a freshly loaded slot until the next periodic heartbeat.
 * - `load_status` and `foreign` (frames naming a request id the session does not own): each kind has its own
 *   token bucket, {@link UNSOLICITED_FRAMES_PER_SEC} per second with a burst of {@link UNSOLICITED_FRAME_BURST};
 *   a frame over budget is dropped.
 * - `other` (frames for the session's own requests, Register): always admitted; other limits apply to them.
 *
 * Pure: no I/O and no timers; time is injected (a {@link FrameBudgetOptions.clock}, or `nowMs` per call).
 */
import { fullBucket, take, type Bucket } from "../ratelimit/token-bucket.js";
import type { Clock } from "../util/clock.js";

/** Sustained, heartbeats may come at most once per this fraction of the requested interval. */
export const MIN_HEARTBEAT_GAP_FRACTION = 0.5;
/** Heartbeats admitted back to back before the rate applies (event-driven heartbeats at registration and loads). */
export const HEARTBEAT_BURST = 8;
/** Refill rate of the ModelLoadStatus and foreign-request-id buckets, frames per second. */
export const UNSOLICITED_FRAMES_PER_SEC = 20;
/** Burst of those buckets, frames. */
export const UNSOLICITED_FRAME_BURST = 50;
/** Strikes a session may collect within {@link STRIKE_WINDOW_MS}; one more disconnects it. */
export const MAX_STRIKES = 100;
/** The sliding window strikes are counted over, ms. */
export const STRIKE_WINDOW_MS = 10_000;

/** What a frame is, as far as the budget cares. */
export type FrameKind = "heartbeat" | "load_status" | "foreign" | "other";

/** The decision for one frame (see the module comment). */
export type FrameVerdict = "ok" | "drop" | "disconnect";

export interface FrameBudgetOptions {
  /** The heartbeat interval the coordinator asked the provider for, ms. */
  heartbeatIntervalMs: number;
  /** Time source for {@link FrameBudget.admit} calls that pass no `nowMs`. */
  clock: Pick<Clock, "nowMs">;
}

/** One session's frame budget. Create one per provider session. */
export class FrameBudget {
  readonly #clock: Pick<Clock, "nowMs">;
  readonly #buckets: Record<Exclude<FrameKind, "other">, Bucket>;
  /** Times of the strikes within the window, oldest first (at most MAX_STRIKES + 1 kept). */
  readonly #strikes: number[] = [];
  #disconnected = false;

  /** Throws a RangeError unless `heartbeatIntervalMs` is a positive finite number. */
  constructor(options: FrameBudgetOptions) {
    if (!(options.heartbeatIntervalMs > 0) || !Number.isFinite(options.heartbeatIntervalMs)) {
      throw new RangeError(`heartbeatIntervalMs must be a positive number of ms, got ${options.heartbeatIntervalMs}`);
    }
    this.#clock = options.clock;
    const now = options.clock.nowMs();
    const unsolicited = { ratePerSec: UNSOLICITED_FRAMES_PER_SEC, burst: UNSOLICITED_FRAME_BURST };
    this.#buckets = {
      heartbeat: fullBucket(
        { ratePerSec: 1000 / (options.heartbeatIntervalMs * MIN_HEARTBEAT_GAP_FRACTION), burst: HEARTBEAT_BURST },
        now,
      ),
      load_status: fullBucket(unsolicited, now),
      foreign: fullBucket(unsolicited, now),
    };
  }

  /** Strikes counted within the window ending at `nowMs`. */
  strikes(nowMs: number = this.#clock.nowMs()): number {
    this.#expire(nowMs);
    return this.#strikes.length;
  }

  /** Decides what to do with one frame of `kind` arriving at `nowMs` (default: the clock's now). */
  admit(kind: FrameKind, nowMs: number = this.#clock.nowMs()): FrameVerdict {
    if (this.#disconnected) return "disconnect";
    if (kind === "other") return "ok";
    const r = take(this.#buckets[kind], 1, nowMs);
    this.#buckets[kind] = r.next;
    return r.allowed ? "ok" : this.#strike(nowMs);
  }

  #strike(nowMs: number): FrameVerdict {
    this.#expire(nowMs);
    this.#strikes.push(nowMs);
    if (this.#strikes.length > MAX_STRIKES) {
      this.#disconnected = true;
      return "disconnect";
    }
    return "drop";
  }

  /** Forgets strikes older than the window (a strike exactly STRIKE_WINDOW_MS old has left it). */
  #expire(nowMs: number): void {
    let n = 0;
    while (n < this.#strikes.length && this.#strikes[n]! <= nowMs - STRIKE_WINDOW_MS) n++;
    if (n > 0) this.#strikes.splice(0, n);
  }
}
