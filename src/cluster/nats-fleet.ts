/**
 * The cluster adapter of the {@link Fleet} port, on NATS (design: ../shared/reference/scale-out.md §6).
 *
 * - **Ownership.** A Mac's stream lives on the coordinator it connected to. The owner publishes a snapshot of it
 *   to the KV bucket `<prefix>_providers` (memory storage: soft state the Macs rebuild in seconds) when it changes,
 *   at most every `snapshotMs`, and every `refreshMs` regardless. Writes after the first are compare-and-set on
 *   the owner's last revision: a failed one means the Mac has since registered elsewhere, and the old stream is
 *   closed (a Mac keeps one live stream).
 * - **Fleet view.** Every node watches the bucket and mirrors the other owners' Macs into its registry
 *   (ProviderRegistry.mirror), so the one pure scheduler routes over the whole fleet.
 * - **Request plane.** A pick of a mirrored Mac is forwarded to its owner (forwarder.ts), which alone admits it
 *   (owner-relay.ts) and relays the Mac's events back.
 * - **Membership.** Nodes beat on `<prefix>.nodes` every `heartbeatMs`; one silent for `nodeTimeoutMs` is
 *   presumed dead: its mirrors are dropped (its Macs reconnect elsewhere and reappear), requests forwarded to it
 *   fail over, requests it forwarded here are stopped. A snapshot from a node not heard from (a dead node's
 *   leftover key, or a node whose first beat is still on its way) is parked until that node beats.
 * - **NATS down.** Beats stop arriving, every peer expires, and this node routes over its own Macs only until
 *   NATS is back; the client reconnects for ever, the watch is re-created and every owned Mac re-published.
 *   Money and limits never depend on NATS (they live in PostgreSQL).
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Kvm, type KV, type KvWatchEntry } from "@nats-io/kv";
import { connect, type NatsConnection, type QueuedIterator } from "@nats-io/transport-node";
import type { ProviderDirectory } from "../dispatch/provider-channel.js";
import type { ProviderRecord, ProviderRegistry } from "../registry/provider-registry.js";
import type { PickResult, RouteRequest } from "../scheduler/types.js";
import { count } from "../telemetry/metrics.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";
import {
  clusterSubjects,
  decodeBeat,
  decodeEnd,
  decodeRelay,
  encode,
  isSubjectToken,
  type EndSession,
  type NodeBeat,
} from "./cluster-messages.js";
import type { ClusterTransport } from "./cluster-transport.js";
import type { Fleet, FleetStatus } from "./fleet.js";
import { Forwarder } from "./forwarder.js";
import { NodeBook } from "./node-book.js";
import { OwnerRelay } from "./owner-relay.js";
import {
  checkSnapshot,
  decodeSnapshot,
  snapshotFingerprint,
  snapshotOf,
  type ProviderSnapshot,
} from "./provider-snapshot.js";

/** The cluster's clocks (settings `CLUSTER_*_MS`, documented in the README). */
export interface ClusterTiming {
  heartbeatMs: number;
  nodeTimeoutMs: number;
  snapshotMs: number;
  refreshMs: number;
  dispatchTimeoutMs: number;
  silenceMs: number;
}

export interface NatsFleetOptions {
  url: string;
  prefix: string;
  /** This process's node id; a random epoch is appended, so a restarted process is a new node. */
  nodeId: string | undefined;
  registry: ProviderRegistry;
  /** The provider service: the Macs connected here, and a way to end a session that moved elsewhere. */
  local: ProviderDirectory & { disconnectSerial(serial: string, reason: string): boolean };
  ownerRoute(providerId: string, req: RouteRequest): PickResult;
  clock: Clock;
  log: Logger;
  timing: ClusterTiming;
}

/** A snapshot value bigger than this is refused by the bucket (a Mac with thousands of requests in flight). */
const MAX_SNAPSHOT_BYTES = 1024 * 1024;
const WATCH_BACKOFF_MIN_MS = 250;
const WATCH_BACKOFF_MAX_MS = 5_000;

interface Owned {
  serial: string;
  session: string;
  /** KV revision of our last write; undefined until the first one lands. */
  rev: number | undefined;
  fingerprint: string;
  lastPutMs: number;
  putting: boolean;
}

interface Mirror {
  node: string;
  rev: number;
  atMs: number;
}

/** Connects to NATS and joins the cluster. Rejects when NATS cannot be reached (the command then fails loudly). */
export async function startNatsFleet(o: NatsFleetOptions): Promise<Fleet> {
  const base = (o.nodeId ?? hostname()).replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 40) || "node";
  const node = `${base}-${randomBytes(3).toString("hex")}`;
  if (!isSubjectToken(node)) throw new Error(`node id ${node} is not a valid NATS subject token`);
  const nc = await connect({
    servers: o.url,
    name: `coordinator ${node}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 2_000,
    maxPingOut: 2,
  });
  const fleet = new NatsFleet(nc, node, o);
  await fleet.start();
  return fleet;
}

class NatsFleet implements Fleet {
  readonly #nc: NatsConnection;
  readonly #node: string;
  readonly #o: NatsFleetOptions;
  readonly #subjects;
  readonly #bucket: string;
  readonly #nodes: NodeBook;
  readonly #forwarder: Forwarder;
  readonly #relay: OwnerRelay;
  readonly #owned = new Map<string, Owned>();
  readonly #mirrors = new Map<string, Mirror>();
  /** Snapshots of nodes not (yet) heard from, by node then provider, with their KV revision. */
  readonly #parked = new Map<string, Map<string, { snap: ProviderSnapshot; rev: number }>>();
  #kv: Promise<KV> | undefined;
  #watcher: QueuedIterator<KvWatchEntry> | undefined;
  #timers: NodeJS.Timeout[] = [];
  #closed = false;
  #kvFailing = false;
  #natsUp = true;

  constructor(nc: NatsConnection, node: string, o: NatsFleetOptions) {
    this.#nc = nc;
    this.#node = node;
    this.#o = o;
    this.#subjects = clusterSubjects(o.prefix);
    this.#bucket = `${o.prefix}_providers`;
    this.#nodes = new NodeBook(o.timing.nodeTimeoutMs);
    const transport: ClusterTransport = {
      request: (subject, data, timeout) => nc.request(subject, data, { timeout }).then((m) => m.data),
      // After close (or while closing) there is nobody left to tell: the peers see this node's silence instead.
      publish: (subject, data) => {
        if (!nc.isClosed() && !nc.isDraining()) nc.publish(subject, data);
      },
    };
    const wallNowMs = () => Date.now();
    this.#forwarder = new Forwarder({
      self: node,
      subjects: this.#subjects,
      transport,
      clock: o.clock,
      wallNowMs,
      dispatchTimeoutMs: o.timing.dispatchTimeoutMs,
      silenceMs: o.timing.silenceMs,
      log: o.log,
      onOwnerView: (owner, v) => {
        const snap = checkSnapshot(v);
        const m = snap && this.#mirrors.get(snap.providerId);
        if (snap && m && snap.node === owner && m.node === owner) this.#applyMirror(snap.providerId, snap, m.rev);
      },
    });
    this.#relay = new OwnerRelay({
      subjects: this.#subjects,
      transport,
      registry: o.registry,
      local: o.local,
      ownerRoute: (id, req) => o.ownerRoute(id, req),
      clock: o.clock,
      wallNowMs,
      viewOf: (id) => {
        const rec = o.registry.get(id);
        const owned = this.#owned.get(id);
        return rec && owned ? snapshotOf(rec, node, owned.session) : undefined;
      },
    });
  }

  async start(): Promise<void> {
    const s = this.#subjects;
    const nc = this.#nc;
    nc.subscribe(s.nodes, { callback: (_e, m) => this.#onBeat(decodeBeat(m.data)) });
    nc.subscribe(s.dispatch(this.#node), {
      callback: (_e, m) => {
        m.respond(encode(this.#relay.dispatch(m.data)));
      },
    });
    nc.subscribe(s.cancel(this.#node), { callback: (_e, m) => this.#relay.cancel(m.data) });
    nc.subscribe(s.load(this.#node), { callback: (_e, m) => this.#relay.load(m.data) });
    nc.subscribe(s.end(this.#node), { callback: (_e, m) => this.#onEnd(decodeEnd(m.data)) });
    nc.subscribe(s.events(this.#node), {
      callback: (_e, m) => {
        const frames = decodeRelay(m.data);
        if (frames) this.#forwarder.receive(frames);
      },
    });
    await this.#openKv();
    void this.#watchLoop();
    void this.#followStatus();
    const { heartbeatMs, snapshotMs } = this.#o.timing;
    this.#beat();
    this.#timers.push(setInterval(() => this.#beat(), heartbeatMs).unref());
    this.#timers.push(setInterval(() => this.#publishOwned(), snapshotMs).unref());
    this.#o.log.info("joined the coordinator cluster", { node: this.#node, prefix: this.#o.prefix });
  }

  channel(providerId: string) {
    const local = this.#o.local.channel(providerId);
    if (local) return local;
    const m = this.#mirrors.get(providerId);
    return m ? this.#forwarder.channel(providerId, m.node) : undefined;
  }

  connected(rec: ProviderRecord): void {
    this.#mirrors.delete(rec.id);
    for (const parked of this.#parked.values()) parked.delete(rec.id);
    this.#owned.set(rec.id, {
      serial: rec.serial,
      session: randomBytes(6).toString("hex"),
      rev: undefined,
      fingerprint: "",
      lastPutMs: 0,
      putting: false,
    });
    // Published at once: the sooner the others see it, the sooner a re-homed Mac takes work again.
    this.#publishOwned();
  }

  disconnected(rec: ProviderRecord): void {
    const o = this.#owned.get(rec.id);
    if (!o) return;
    this.#owned.delete(rec.id);
    void this.#withdraw(rec.id, o).catch(() => {});
  }

  endRemote(providerId: string, reason: string): void {
    const m = this.#mirrors.get(providerId);
    if (!m) return;
    const end: EndSession = { providerId, reason };
    if (!this.#nc.isClosed()) this.#nc.publish(this.#subjects.end(m.node), encode(end));
  }

  #onEnd(e: EndSession | undefined): void {
    const o = e && this.#owned.get(e.providerId);
    if (!e || !o) return;
    this.#o.log.warn("provider session ended at another coordinator's request", {
      node: this.#node,
      provider_id: e.providerId,
      serial: o.serial,
      reason: e.reason,
    });
    this.#o.local.disconnectSerial(o.serial, e.reason);
  }

  status(): FleetStatus {
    return {
      mode: "cluster",
      node: this.#node,
      peers: this.#nodes.alive,
      owned: this.#owned.size,
      mirrored: this.#mirrors.size,
      connected: this.#natsUp && !this.#kvFailing,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    this.#watcher?.stop();
    // Withdraw our Macs' entries so the others stop routing to them at once (bounded: NATS may be down).
    const withdrawals = [...this.#owned].map(([id, o]) => this.#withdraw(id, o).catch(() => {}));
    await Promise.race([Promise.all(withdrawals), new Promise((r) => setTimeout(r, 1_000).unref())]);
    await this.#nc.drain().catch(() => this.#nc.close());
  }

  // ——— membership ———

  #beat(): void {
    if (this.#closed) return;
    const now = this.#o.clock.nowMs();
    const beat: NodeBeat = { node: this.#node, providers: this.#owned.size };
    this.#nc.publish(this.#subjects.nodes, encode(beat));
    this.#relay.beat();
    this.#forwarder.sweep();
    for (const dead of this.#nodes.expire(now)) this.#nodeDied(dead);
    // A mirror its owner stopped refreshing (a lost delete) is dropped rather than routed to for ever.
    for (const [id, m] of [...this.#mirrors]) if (now - m.atMs > 3 * this.#o.timing.refreshMs) this.#dropMirror(id);
  }

  #onBeat(b: NodeBeat | undefined): void {
    if (!b || b.node === this.#node || !isSubjectToken(b.node)) return;
    if (!this.#nodes.beat(b.node, this.#o.clock.nowMs())) return;
    this.#o.log.info("coordinator joined", { node: this.#node, peer: b.node, providers: b.providers });
    const parked = this.#parked.get(b.node);
    this.#parked.delete(b.node);
    for (const [id, p] of parked ?? []) this.#applyMirror(id, p.snap, p.rev);
  }

  #nodeDied(node: string): void {
    let dropped = 0;
    for (const [id, m] of [...this.#mirrors])
      if (m.node === node) {
        this.#dropMirror(id);
        dropped++;
        // Tidy the bucket for the survivors, only if the key is still the dead node's (compare-and-delete).
        void this.#kvOrUndefined()?.then((kv) => kv.delete(keyOf(id), { previousSeq: m.rev }).catch(() => {}));
      }
    this.#parked.delete(node);
    count("cluster.nodes_expired");
    this.#forwarder.nodeDied(node);
    const stopped = this.#relay.nodeDied(node);
    this.#o.log.warn("coordinator presumed dead", {
      node: this.#node,
      peer: node,
      silent_ms: this.#o.timing.nodeTimeoutMs,
      mirrors_dropped: dropped,
      relayed_requests_stopped: stopped,
      reason: "no heartbeat",
    });
  }

  // ——— fleet view ———

  async #watchLoop(): Promise<void> {
    let backoff = WATCH_BACKOFF_MIN_MS;
    while (!this.#closed) {
      try {
        const kv = await this.#openKv();
        const iter = await kv.watch();
        this.#watcher = iter;
        backoff = WATCH_BACKOFF_MIN_MS;
        for await (const e of iter) this.#onEntry(e);
      } catch (e) {
        this.#kv = undefined;
        this.#o.log.warn("cluster fleet view: watch failed; retrying", {
          node: this.#node,
          retry_in_ms: backoff,
          reason: String(e),
        });
      }
      if (this.#closed) return;
      await new Promise((r) => setTimeout(r, backoff).unref());
      backoff = Math.min(backoff * 2, WATCH_BACKOFF_MAX_MS);
    }
  }

  /** After a reconnect the watch may be stale (and a memory bucket gone with a restarted server): redo both. */
  async #followStatus(): Promise<void> {
    for await (const s of this.#nc.status()) {
      if (this.#closed) return;
      if (s.type === "reconnect") {
        this.#natsUp = true;
        this.#o.log.info("cluster: NATS reconnected; re-reading the fleet view", { node: this.#node });
        this.#kv = undefined;
        for (const o of this.#owned.values()) {
          o.rev = undefined;
          o.fingerprint = "";
        }
        this.#watcher?.stop();
      } else if (s.type === "disconnect") {
        this.#natsUp = false;
        this.#o.log.warn("cluster: NATS connection lost; routing over this node's own Macs until it is back", {
          node: this.#node,
          reason: "nats disconnected",
        });
      }
    }
  }

  #onEntry(e: KvWatchEntry): void {
    const id = idOf(e.key);
    if (id === undefined) return;
    if (e.operation !== "PUT") {
      this.#dropMirror(id);
      for (const parked of this.#parked.values()) parked.delete(id);
      return;
    }
    const snap = decodeSnapshot(e.string());
    if (!snap || snap.providerId !== id || snap.node === this.#node) return;
    const mine = this.#owned.get(id);
    if (mine) {
      // Written after our last write: the Mac has registered on that node since; our stream is the stale one.
      if (mine.rev === undefined || e.revision <= mine.rev) return;
      this.#lost(id, mine, snap.node);
      // The closed session's record is gone (synchronously): mirror the Mac's new home right away.
    }
    if (!this.#nodes.isAlive(snap.node)) {
      let parked = this.#parked.get(snap.node);
      if (!parked) this.#parked.set(snap.node, (parked = new Map()));
      parked.set(id, { snap, rev: e.revision });
      return;
    }
    this.#applyMirror(id, snap, e.revision);
  }

  #applyMirror(id: string, snap: ProviderSnapshot, rev: number): void {
    const { registry, clock } = this.#o;
    if (this.#owned.has(id)) return;
    // A record with no mirror entry is a session here still handshaking or closing: not ours to overwrite.
    if (registry.get(id) && !this.#mirrors.has(id)) return;
    const now = clock.nowMs();
    registry.mirror(id, snap.registration, snap.state, now);
    this.#mirrors.set(id, { node: snap.node, rev, atMs: now });
  }

  #dropMirror(id: string): void {
    if (!this.#mirrors.delete(id) || this.#owned.has(id)) return;
    this.#o.registry.remove(id);
  }

  // ——— publishing our Macs ———

  #publishOwned(): void {
    if (this.#closed) return;
    const { registry, clock, timing } = this.#o;
    const now = clock.nowMs();
    for (const [id, o] of this.#owned) {
      if (o.putting) continue;
      const rec = registry.get(id);
      if (!rec) continue;
      const fingerprint = snapshotFingerprint(rec);
      if (fingerprint === o.fingerprint && now - o.lastPutMs < timing.refreshMs) continue;
      o.fingerprint = fingerprint;
      o.lastPutMs = now;
      o.putting = true;
      this.#put(id, o, rec)
        .then(() => {
          if (this.#kvFailing) this.#o.log.info("cluster: fleet view writes resumed", { node: this.#node });
          this.#kvFailing = false;
        })
        .catch((e) => {
          o.fingerprint = ""; // try again next tick
          this.#kv = undefined;
          if (!this.#kvFailing)
            this.#o.log.warn("cluster: cannot publish this node's Macs; retrying", {
              node: this.#node,
              provider_id: id,
              reason: String(e),
            });
          this.#kvFailing = true;
        })
        .finally(() => {
          o.putting = false;
        });
    }
  }

  async #put(id: string, o: Owned, rec: ProviderRecord): Promise<void> {
    const kv = await this.#openKv();
    const data = encode(snapshotOf(rec, this.#node, o.session));
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
      if (other && other.node !== this.#node) {
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
      node: this.#node,
      provider_id: id,
      serial: o.serial,
      peer: node,
      reason: "newer session elsewhere",
    });
    this.#o.local.disconnectSerial(o.serial, `this Mac has a newer session on coordinator ${node}`);
  }

  /** Deletes our entry for a Mac that left, unless someone else's newer entry replaced it. */
  async #withdraw(id: string, o: Owned): Promise<void> {
    const kv = await this.#openKv();
    const key = keyOf(id);
    let rev = o.rev;
    if (rev === undefined) {
      const current = await kv.get(key);
      const snap = current?.operation === "PUT" ? decodeSnapshot(current.string()) : undefined;
      if (!current || snap?.node !== this.#node || snap.session !== o.session) return;
      rev = current.revision;
    }
    await kv.delete(key, { previousSeq: rev });
  }

  #openKv(): Promise<KV> {
    this.#kv ??= new Kvm(this.#nc)
      .create(this.#bucket, { storage: "memory", history: 1, maxValueSize: MAX_SNAPSHOT_BYTES })
      .catch((e: unknown) => {
        this.#kv = undefined;
        throw e;
      });
    return this.#kv;
  }

  #kvOrUndefined(): Promise<KV> | undefined {
    return this.#kv;
  }
}

/** KV keys allow `[-/_=.a-zA-Z0-9]`; provider ids are opaque, so they are stored base64url-encoded. */
function keyOf(providerId: string): string {
  return Buffer.from(providerId, "utf8").toString("base64url");
}

function idOf(key: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(key)) return undefined;
  return Buffer.from(key, "base64url").toString("utf8");
}
