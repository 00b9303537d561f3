/**
 * The Macs whose streams this node holds, as it publishes them to the cluster's fleet view (KV bucket, one key per
 * Mac). A Mac's snapshot is written when it changes, at most every `snapshotMs` (the caller's tick), and every
 * `refreshMs` regardless. Writes after the first are compare-and-set on this node's last revision: a failed one
 * means someone else wrote the key since — the Mac registered on another node (our stream is stale: it is ended,
 * a Mac keeps one live stream), or the bucket is new (a restarted NATS: we write again).
 */
import { randomBytes } from "node:crypto";
import type { KV } from "@nats-io/kv";
import type { ProviderRecord, ProviderRegistry } from "../registry/provider-registry.js";
import { count } from "../telemetry/metrics.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";
import { encode } from "./cluster-messages.js";
import { decodeSnapshot, snapshotFingerprint, snapshotOf } from "./provider-snapshot.js";

export interface OwnedMacsOptions {
  node: string;
  registry: ProviderRegistry;
  /** Ends a local session (the provider service's disconnectSerial). */
  endLocal(serial: string, reason: string): void;
  /** The bucket, opened (or re-opened after a restarted NATS) on demand. */
  kv(): Promise<KV>;
  /** A write failed: the bucket handle is dropped so the next one re-opens it. */
  kvFailed(): void;
  clock: Clock;
  refreshMs: number;
  log: Logger;
}

interface Owned {
  serial: string;
  session: string;
  /** KV revision of our last write; undefined until the first one lands. */
  rev: number | undefined;
  fingerprint: string;
  lastPutMs: number;
  putting: boolean;
}

export class OwnedMacs {
  readonly #o: OwnedMacsOptions;
  readonly #owned = new Map<string, Owned>();
  #failing = false;

  constructor(options: OwnedMacsOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#owned.size;
  }

  has(id: string): boolean {
    return this.#owned.has(id);
  }

  /** Whether the last writes of our snapshots failed (NATS down, bucket gone). */
  get failing(): boolean {
    return this.#failing;
  }

  /** A Mac's session started here: a new session id, published at the next {@link publish}. */
  add(rec: ProviderRecord): void {
    this.#owned.set(rec.id, {
      serial: rec.serial,
      session: randomBytes(6).toString("hex"),
      rev: undefined,
      fingerprint: "",
      lastPutMs: 0,
      putting: false,
    });
  }

  /** A Mac's session here ended: its entry is withdrawn unless someone else's newer one replaced it. */
  remove(id: string): void {
    const o = this.#owned.get(id);
    if (!o) return;
    this.#owned.delete(id);
    void this.#withdraw(id, o).catch(() => {});
  }

  /** Withdraws every entry (orderly shutdown). */
  withdrawAll(): Promise<void> {
    return Promise.all([...this.#owned].map(([id, o]) => this.#withdraw(id, o).catch(() => {}))).then(() => {});
  }

  /** This node's current snapshot of one of its Macs (sent along with an owner's refusal). */
  snapshot(id: string): unknown {
    const rec = this.#o.registry.get(id);
    const o = this.#owned.get(id);
    return rec && o ? snapshotOf(rec, this.#o.node, o.session) : undefined;
  }

  /** The bucket may be new (NATS reconnected): the next writes are unconditional, and every Mac is re-published. */
  forgetRevisions(): void {
    for (const o of this.#owned.values()) {
      o.rev = undefined;
      o.fingerprint = "";
    }
  }

  /**
   * A watch entry for one of our Macs written by `node`: if it was written after our last write, the Mac has
   * registered there since and our stream is stale. Returns true when it ended our session.
   */
  writtenElsewhere(id: string, node: string, revision: number): boolean {
    const o = this.#owned.get(id);
    if (!o || o.rev === undefined || revision <= o.rev) return false;
    this.#lost(id, o, node);
    return true;
  }

  /** Another node asks to end this Mac's session (a fence or a forgotten identity decided there). */
  end(id: string, reason: string): void {
    const o = this.#owned.get(id);
    if (!o) return;
    this.#o.log.warn("provider session ended at another coordinator's request", {
      node: this.#o.node,
      provider_id: id,
      serial: o.serial,
      reason,
    });
    this.#o.endLocal(o.serial, reason);
  }

  /** Writes every Mac whose snapshot changed, or whose last write is `refreshMs` old. Call every snapshot tick. */
  publish(): void {
    const { registry, clock, refreshMs } = this.#o;
    const now = clock.nowMs();
    for (const [id, o] of this.#owned) {
      if (o.putting) continue;
      const rec = registry.get(id);
      if (!rec) continue;
      const fingerprint = snapshotFingerprint(rec);
      if (fingerprint === o.fingerprint && now - o.lastPutMs < refreshMs) continue;
      o.fingerprint = fingerprint;
      o.lastPutMs = now;
      o.putting = true;
      this.#put(id, o, rec)
        .then(() => {
          if (this.#failing) this.#o.log.info("cluster: fleet view writes resumed", { node: this.#o.node });
          this.#failing = false;
        })
        .catch((e) => {
          o.fingerprint = ""; // written again at the next tick
          this.#o.kvFailed();
          if (!this.#failing)
            this.#o.log.warn("cluster: cannot publish this node's Macs; retrying", {
              node: this.#o.node,
              provider_id: id,
              reason: String(e),
            });
          this.#failing = true;
        })
        .finally(() => {
          o.putting = false;
        });
    }
  }

  async #put(id: string, o: Owned, rec: ProviderRecord): Promise<void> {
    const kv = await this.#o.kv();
    const data = encode(snapshotOf(rec, this.#o.node, o.session));
    const key = keyOf(id);
    if (o.rev === undefined) {
      o.rev = await kv.put(key, data);
      return;
    }
    try {
      o.rev = await kv.update(key, data, o.rev);
    } catch {
      // Someone wrote the key since our last write, or the bucket is new (a restarted NATS): look who.
      const current = await kv.get(key);
      const other = current?.operation === "PUT" ? decodeSnapshot(current.string()) : undefined;
      if (other && other.node !== this.#o.node) {
        if (this.#owned.get(id) === o) this.#lost(id, o, other.node);
        return;
      }
      o.rev = await kv.put(key, data);
    }
  }

  /** The Mac registered on `node` after it registered here: this stream is stale, end it. */
  #lost(id: string, o: Owned, node: string): void {
    if (this.#owned.get(id) !== o) return;
    this.#owned.delete(id);
    count("cluster.providers_moved");
    this.#o.log.warn("provider moved to another coordinator; closing the stale stream here", {
      node: this.#o.node,
      provider_id: id,
      serial: o.serial,
      peer: node,
      reason: "newer session elsewhere",
    });
    this.#o.endLocal(o.serial, `this Mac has a newer session on coordinator ${node}`);
  }

  /** Deletes our entry for a Mac that left, unless someone else's newer entry replaced it. */
  async #withdraw(id: string, o: Owned): Promise<void> {
    const kv = await this.#o.kv();
    const key = keyOf(id);
    let rev = o.rev;
    if (rev === undefined) {
      const current = await kv.get(key);
      const snap = current?.operation === "PUT" ? decodeSnapshot(current.string()) : undefined;
      if (!current || snap?.node !== this.#o.node || snap.session !== o.session) return;
      rev = current.revision;
    }
    await kv.delete(key, { previousSeq: rev });
  }
}

/** KV keys allow `[-/_=.a-zA-Z0-9]`; provider ids are opaque, so they are stored base64url-encoded. */
export function keyOf(providerId: string): string {
  return Buffer.from(providerId, "utf8").toString("base64url");
}

export function idOf(key: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(key)) return undefined;
  return Buffer.from(key, "base64url").toString("utf8");
}
