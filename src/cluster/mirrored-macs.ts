/**
 * The other nodes' Macs as this node mirrors them (cluster mode), from the fleet view's watch: each entry goes
 * into the registry (ProviderRegistry.mirror) so the one scheduler routes over the whole fleet. An entry from a
 * node not heard from — a dead node's leftover, or a node whose first beat is still on its way — is parked until
 * that node beats, so a crashed node's Macs are never resurrected from the bucket.
 */
import type { ProviderRegistry } from "../registry/provider-registry.js";
import type { Clock } from "../util/clock.js";
import type { ProviderSnapshot } from "./provider-snapshot.js";

export interface MirroredMacsOptions {
  registry: ProviderRegistry;
  clock: Clock;
  /** Whether a node is alive (its beats arrive). */
  isAlive(node: string): boolean;
  /** Whether this node holds the Mac's stream itself (then it is never mirrored). */
  isOwned(id: string): boolean;
}

interface Mirror {
  node: string;
  /** KV revision of the entry mirrored (for a compare-and-delete after its node died). */
  rev: number;
  atMs: number;
}

export class MirroredMacs {
  readonly #o: MirroredMacsOptions;
  readonly #mirrors = new Map<string, Mirror>();
  readonly #parked = new Map<string, Map<string, { snap: ProviderSnapshot; rev: number }>>();

  constructor(options: MirroredMacsOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#mirrors.size;
  }

  /** The node that owns a mirrored Mac. */
  ownerOf(id: string): string | undefined {
    return this.#mirrors.get(id)?.node;
  }

  /** A watch entry (put) of another node's Mac. */
  put(snap: ProviderSnapshot, rev: number): void {
    if (!this.#o.isAlive(snap.node)) {
      let parked = this.#parked.get(snap.node);
      if (!parked) this.#parked.set(snap.node, (parked = new Map()));
      parked.set(snap.providerId, { snap, rev });
      return;
    }
    this.#apply(snap, rev);
  }

  /** The owner's view carried by its refusal: newer than ours, same entry. */
  ownerView(owner: string, snap: ProviderSnapshot): void {
    const m = this.#mirrors.get(snap.providerId);
    if (m && snap.node === owner && m.node === owner) this.#apply(snap, m.rev);
  }

  /** A watch entry deleted (the Mac left its owner), or this node took the Mac's stream. */
  delete(id: string): void {
    this.#drop(id);
    for (const parked of this.#parked.values()) parked.delete(id);
  }

  /** A node's first beat (or first since it was presumed dead): its parked entries are mirrored. */
  nodeAlive(node: string): void {
    const parked = this.#parked.get(node);
    this.#parked.delete(node);
    for (const p of parked?.values() ?? []) this.#apply(p.snap, p.rev);
  }

  /** A node presumed dead: its mirrors are dropped. Returns them with their revisions, to tidy the bucket. */
  nodeDied(node: string): { id: string; rev: number }[] {
    const dropped: { id: string; rev: number }[] = [];
    for (const [id, m] of [...this.#mirrors])
      if (m.node === node) {
        this.#drop(id);
        dropped.push({ id, rev: m.rev });
      }
    this.#parked.delete(node);
    return dropped;
  }

  /** Drops every mirror (this node lost NATS: it routes over its own Macs until the view is back). */
  dropAll(): void {
    for (const id of [...this.#mirrors.keys()]) this.#drop(id);
    this.#parked.clear();
  }

  /** Drops mirrors their owner stopped refreshing for `maxAgeMs` (a delete that was lost). */
  dropStale(nowMs: number, maxAgeMs: number): void {
    for (const [id, m] of [...this.#mirrors]) if (nowMs - m.atMs > maxAgeMs) this.#drop(id);
  }

  #apply(snap: ProviderSnapshot, rev: number): void {
    const { registry, clock } = this.#o;
    const id = snap.providerId;
    if (this.#o.isOwned(id)) return;
    // A record with no mirror entry is a session here still handshaking or closing: not ours to overwrite.
    if (registry.get(id) && !this.#mirrors.has(id)) return;
    const now = clock.nowMs();
    registry.mirror(id, snap.registration, snap.state, now);
    this.#mirrors.set(id, { node: snap.node, rev, atMs: now });
  }

  #drop(id: string): void {
    if (!this.#mirrors.delete(id) || this.#o.isOwned(id)) return;
    this.#o.registry.remove(id);
  }
}
