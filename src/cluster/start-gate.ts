/**
 * When the owner of a Mac may start an admitted forward right after the messages read with it (a microtask),
 * instead of a whole turn of its event loop later (`setImmediate`), which on a busy owner cost ~30 ms p50 of
 * every forwarded first token in the cluster benchmark.
 *
 * The turn exists for one hazard: a dispatch the requester has given up on (and may have run on another Mac)
 * arriving together with its cancel, e.g. from a requester's client buffer after a NATS outage, or to an owner
 * waking from a stall its peers took for death. A requester gives up on a delivered forward only
 * - after its first-token deadline (at least `firstTokenBaseMs` after sending), or
 * - after `silenceMs` without a word from the owner (counted from sending at the earliest), or
 * - when the owner is presumed dead (`nodeTimeoutMs` without its beats).
 * So a dispatch younger than half of each of those, at an owner whose own beats went out on time for the last
 * `nodeTimeoutMs` and whose NATS connection held, cannot have been given up: it starts at once. Anything else (an
 * older dispatch, one without `sentAtMs` from an older node, an owner that stalled or was cut off) keeps the turn.
 * Ages compare two nodes' wall clocks, as `notAfterMs` already does (NTP).
 */

/** The longest age of a dispatch that may start at once, ms (further capped by the clocks above). */
export const FRESH_DISPATCH_MS = 100;

/** A gap between two of this node's beats longer than this many beat periods counts as a stall. */
const STALL_BEATS = 1.5;

/** The clocks the rule depends on (settings `CLUSTER_*_MS`, `FIRST_TOKEN_BASE_MS`). */
export interface StartGateTiming {
  heartbeatMs: number;
  nodeTimeoutMs: number;
  silenceMs: number;
  firstTokenBaseMs: number;
}

export class StartGate {
  readonly #t: StartGateTiming;
  readonly windowMs: number;
  #lastBeatMs: number | undefined;
  /** Until then (monotonic ms) every dispatch keeps the turn: this node stalled, or its connection dropped. */
  #waryUntilMs = 0;
  #connected = true;

  constructor(timing: StartGateTiming) {
    this.#t = timing;
    this.windowMs = Math.min(
      FRESH_DISPATCH_MS,
      timing.nodeTimeoutMs / 2,
      timing.silenceMs / 2,
      timing.firstTokenBaseMs / 2,
    );
  }

  /**
   * This node sent a beat (call from the beat timer, at `nowMs` monotonic). Returns the gap since the previous
   * beat when it was a stall (for the caller to log), else undefined.
   */
  beat(nowMs: number): number | undefined {
    const gap = this.#lastBeatMs === undefined ? 0 : nowMs - this.#lastBeatMs;
    this.#lastBeatMs = nowMs;
    if (gap <= STALL_BEATS * this.#t.heartbeatMs) return undefined;
    this.#waryUntilMs = Math.max(this.#waryUntilMs, nowMs + this.#t.nodeTimeoutMs);
    return gap;
  }

  /** This node's NATS connection dropped: its peers may stop hearing it. */
  disconnected(): void {
    this.#connected = false;
  }

  /** The connection is back: wary for as long as a peer could still be acting on our silence. */
  reconnected(nowMs: number): void {
    this.#connected = true;
    this.#waryUntilMs = Math.max(this.#waryUntilMs, nowMs + this.#t.nodeTimeoutMs);
  }

  /** True when a dispatch sent at `sentAtMs` (the requester's wall clock) may start at once. */
  atOnce(sentAtMs: number | undefined, wallNowMs: number, nowMs: number): boolean {
    if (sentAtMs === undefined || !this.#connected || nowMs < this.#waryUntilMs) return false;
    const age = wallNowMs - sentAtMs;
    return Math.abs(age) <= this.windowMs;
  }
}
