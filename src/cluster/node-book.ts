/**
 * Which coordinators are alive, from their heartbeats (cluster mode). Pure: beats and the clock in, the nodes
 * that just went silent out. A node silent for `timeoutMs` is presumed dead: the others stop routing to its
 * Macs and stop relaying for it. Liveness is judged locally from core-NATS beats rather than from KV TTLs,
 * because on the NATS server this project runs (2.9) an expiring key sends watchers no event at all.
 */
export class NodeBook {
  readonly #timeoutMs: number;
  readonly #lastBeat = new Map<string, number>();

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** Records a beat; true if the node was not known alive (new, or back after being presumed dead). */
  beat(node: string, nowMs: number): boolean {
    const known = this.#lastBeat.has(node);
    this.#lastBeat.set(node, nowMs);
    return !known;
  }

  /**
   * Gives every known node a fresh timeout from `nowMs`: after this node's own connection was down, their silence
   * says nothing about them (they are judged again once they have had a full timeout to be heard).
   */
  forgiveAll(nowMs: number): void {
    for (const node of this.#lastBeat.keys()) this.#lastBeat.set(node, nowMs);
  }

  isAlive(node: string): boolean {
    return this.#lastBeat.has(node);
  }

  /** Forgets and returns the nodes silent for at least the timeout. */
  expire(nowMs: number): string[] {
    const dead: string[] = [];
    for (const [node, at] of this.#lastBeat)
      if (nowMs - at >= this.#timeoutMs) {
        this.#lastBeat.delete(node);
        dead.push(node);
      }
    return dead;
  }

  get alive(): string[] {
    return [...this.#lastBeat.keys()];
  }
}
