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
import type { KvWatchEntry } from "@nats-io/kv";
import { connect, RequestError, type NatsConnection } from "@nats-io/transport-node";
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
  type ClusterSubjects,
  type EndSession,
  type NodeBeat,
} from "./cluster-messages.js";
import { NotDeliveredError, type ClusterTransport } from "./cluster-transport.js";
import type { Fleet, FleetStatus } from "./fleet.js";
import { FleetBucket } from "./fleet-bucket.js";
import { Forwarder } from "./forwarder.js";
import { MirroredMacs } from "./mirrored-macs.js";
import { NodeBook } from "./node-book.js";
import { idOf, keyOf, OwnedMacs } from "./owned-macs.js";
import { OwnerRelay } from "./owner-relay.js";
import { StartGate } from "./start-gate.js";
import { checkSnapshot, decodeSnapshot } from "./provider-snapshot.js";

/** The cluster's clocks (settings `CLUSTER_*_MS`, documented in the README). */
export interface ClusterTiming {
  heartbeatMs: number;
  nodeTimeoutMs: number;
  snapshotMs: number;
  refreshMs: number;
  dispatchTimeoutMs: number;
  silenceMs: number;
  /** FIRST_TOKEN_BASE_MS: a requester gives up on a silent forward no sooner (start-gate.ts). */
  firstTokenBaseMs: number;
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
  /** MAX_BODY_BYTES, to warn at start when NATS cannot carry the largest request. */
  maxBodyBytes: number;
}

/** A mirror its owner has not refreshed for this many refresh periods is dropped (a lost delete). */
const STALE_MIRROR_REFRESHES = 3;
/** How long closing waits for this node's entries to be withdrawn (NATS may be down). */
const WITHDRAW_ON_CLOSE_MS = 1_000;

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
    // Otherwise every request (each forward, each KV write) captures a stack trace up front for a possible error:
    // 1-2 % of the owner's CPU in the cluster benchmark's profile. Errors here are handled by kind, not by stack.
    noAsyncTraces: true,
  });
  const maxPayload = nc.info?.max_payload ?? 0;
  if (maxPayload < o.maxBodyBytes)
    o.log.warn("cluster: NATS max_payload is below MAX_BODY_BYTES; larger requests run only on this node's own Macs", {
      node,
      nats_max_payload: maxPayload,
      max_body_bytes: o.maxBodyBytes,
      reason: "raise max_payload in the NATS server config to forward every request",
    });
  const fleet = new NatsFleet(nc, node, o);
  await fleet.start();
  return fleet;
}

class NatsFleet implements Fleet {
  readonly #nc: NatsConnection;
  readonly #node: string;
  readonly #o: NatsFleetOptions;
  readonly #subjects: ClusterSubjects;
  readonly #nodes: NodeBook;
  readonly #owned: OwnedMacs;
  readonly #mirrored: MirroredMacs;
  readonly #forwarder: Forwarder;
  readonly #relay: OwnerRelay;
  readonly #startGate: StartGate;
  readonly #bucket: FleetBucket;
  #timers: NodeJS.Timeout[] = [];
  #closed = false;
  #natsUp = true;

  constructor(nc: NatsConnection, node: string, o: NatsFleetOptions) {
    this.#nc = nc;
    this.#node = node;
    this.#o = o;
    this.#subjects = clusterSubjects(o.prefix);
    this.#nodes = new NodeBook(o.timing.nodeTimeoutMs);
    this.#bucket = new FleetBucket(nc, `${o.prefix}_providers`, node, o.log);
    this.#owned = new OwnedMacs({
      node,
      registry: o.registry,
      endLocal: (serial, reason) => o.local.disconnectSerial(serial, reason),
      kv: () => this.#bucket.open(),
      kvFailed: () => this.#bucket.invalidate(),
      clock: o.clock,
      refreshMs: o.timing.refreshMs,
      log: o.log,
    });
    this.#mirrored = new MirroredMacs({
      registry: o.registry,
      clock: o.clock,
      isAlive: (n) => this.#nodes.isAlive(n),
      isOwned: (id) => this.#owned.has(id),
    });
    const transport: ClusterTransport = {
      // While NATS is known to be away nothing is sent: the client would buffer a dispatch and deliver it after
      // the reconnect, when the requester has long run the request elsewhere.
      request: (subject, data, timeout) =>
        this.#natsUp
          ? nc.request(subject, data, { timeout }).then(
              (m) => m.data,
              (e: unknown) => {
                throw e instanceof RequestError && e.isNoResponders()
                  ? new NotDeliveredError(`no responders on ${subject}`)
                  : e;
              },
            )
          : Promise.reject(new NotDeliveredError("NATS is disconnected; nothing was sent")),
      // After close (or while closing) there is nobody left to tell: the peers see this node's silence instead.
      publish: (subject, data) => {
        if (nc.isClosed() || nc.isDraining()) return;
        // nats throws synchronously (a message over max_payload, a bad subject); callers publish from timers and
        // microtasks, where a throw would end the process and every stream on it.
        try {
          nc.publish(subject, data);
        } catch (e) {
          count("cluster.publish_failures");
          o.log.warn("cluster: publish refused", { node, subject, bytes: data.length, reason: String(e) });
        }
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
      maxMessageBytes: nc.info?.max_payload,
      log: o.log,
      onOwnerView: (owner, v) => {
        const snap = checkSnapshot(v);
        if (snap) this.#mirrored.ownerView(owner, snap);
      },
    });
    this.#startGate = new StartGate(o.timing);
    this.#relay = new OwnerRelay({
      subjects: this.#subjects,
      transport,
      registry: o.registry,
      local: o.local,
      ownerRoute: (id, req) => o.ownerRoute(id, req),
      clock: o.clock,
      wallNowMs,
      viewOf: (id) => this.#owned.snapshot(id),
      // One NATS message per requesting node per turn of the event loop, however many chunks arrived in it.
      defer: (task) => setImmediate(task),
      // A young dispatch at an owner that kept beating starts without that turn (start-gate.ts).
      startsAtOnce: (sentAtMs) => this.#startGate.atOnce(sentAtMs, wallNowMs(), o.clock.nowMs()),
      deferBriefly: (task) => queueMicrotask(task),
    });
  }

  async start(): Promise<void> {
    const s = this.#subjects;
    const nc = this.#nc;
    const node = this.#node;
    nc.subscribe(s.nodes, { callback: (_e, m) => this.#onBeat(decodeBeat(m.data)) });
    nc.subscribe(s.dispatch(node), {
      callback: (_e, m) => {
        m.respond(encode(this.#relay.dispatch(m.data)));
      },
    });
    nc.subscribe(s.cancel(node), { callback: (_e, m) => this.#relay.cancel(m.data) });
    nc.subscribe(s.load(node), { callback: (_e, m) => this.#relay.load(m.data) });
    nc.subscribe(s.end(node), {
      callback: (_e, m) => {
        const e = decodeEnd(m.data);
        if (e) this.#owned.end(e.providerId, e.reason);
      },
    });
    nc.subscribe(s.events(node), {
      callback: (_e, m) => {
        const frames = decodeRelay(m.data);
        if (frames) this.#forwarder.receive(frames);
      },
    });
    await this.#bucket.open();
    void this.#bucket.watch((e) => this.#onEntry(e));
    void this.#followStatus();
    const { heartbeatMs, snapshotMs } = this.#o.timing;
    this.#beat();
    this.#timers.push(setInterval(() => this.#beat(), heartbeatMs).unref());
    this.#timers.push(setInterval(() => this.#publish(), snapshotMs).unref());
    this.#o.log.info("joined the coordinator cluster", { node, prefix: this.#o.prefix });
  }

  channel(providerId: string) {
    const local = this.#o.local.channel(providerId);
    if (local) return local;
    const owner = this.#mirrored.ownerOf(providerId);
    return owner === undefined ? undefined : this.#forwarder.channel(providerId, owner);
  }

  connected(rec: ProviderRecord): void {
    // Owned first: dropping the mirror must not remove the record the new session just registered.
    this.#owned.add(rec);
    this.#mirrored.delete(rec.id);
    // Published at once: the sooner the others see it, the sooner a re-homed Mac takes work again.
    this.#publish();
  }

  disconnected(rec: ProviderRecord): void {
    this.#owned.remove(rec.id);
  }

  endRemote(providerId: string, reason: string): void {
    const owner = this.#mirrored.ownerOf(providerId);
    if (owner === undefined || this.#nc.isClosed()) return;
    const end: EndSession = { providerId, reason };
    this.#nc.publish(this.#subjects.end(owner), encode(end));
  }

  status(): FleetStatus {
    return {
      mode: "cluster",
      node: this.#node,
      peers: this.#nodes.alive,
      owned: this.#owned.size,
      mirrored: this.#mirrored.size,
      connected: this.#natsUp && !this.#owned.failing,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    this.#bucket.stop();
    // Withdraw our Macs' entries so the others stop routing to them at once (bounded: NATS may be down).
    await Promise.race([this.#owned.withdrawAll(), new Promise((r) => setTimeout(r, WITHDRAW_ON_CLOSE_MS).unref())]);
    await this.#nc.drain().catch(() => this.#nc.close());
  }

  #publish(): void {
    if (!this.#closed) this.#owned.publish();
  }

  // ——— membership ———

  #beat(): void {
    if (this.#closed) return;
    const now = this.#o.clock.nowMs();
    const stalledMs = this.#startGate.beat(now);
    if (stalledMs !== undefined)
      this.#o.log.warn("cluster: this node's beat ran late; its peers may have presumed it dead", {
        node: this.#node,
        beat_gap_ms: stalledMs,
        heartbeat_ms: this.#o.timing.heartbeatMs,
        reason: "event loop blocked or process paused (CPU starvation, GC, SIGSTOP): check the node's load",
      });
    const beat: NodeBeat = { node: this.#node, providers: this.#owned.size };
    if (!this.#nc.isClosed()) this.#nc.publish(this.#subjects.nodes, encode(beat));
    this.#relay.beat();
    // Silence heard while our own connection is down is no evidence against the forwards' owners or the peers:
    // both are judged only while connected (the reconnect gives each a fresh window).
    if (!this.#natsUp) return;
    this.#forwarder.sweep();
    for (const dead of this.#nodes.expire(now)) this.#nodeDied(dead);
    this.#mirrored.dropStale(now, STALE_MIRROR_REFRESHES * this.#o.timing.refreshMs);
  }

  #onBeat(b: NodeBeat | undefined): void {
    if (!b || b.node === this.#node || !isSubjectToken(b.node)) return;
    if (!this.#nodes.beat(b.node, this.#o.clock.nowMs())) return;
    this.#o.log.info("coordinator joined", { node: this.#node, peer: b.node, providers: b.providers });
    this.#mirrored.nodeAlive(b.node);
  }

  #nodeDied(node: string): void {
    const dropped = this.#mirrored.nodeDied(node);
    // Tidy the bucket for the survivors, only where the key is still the dead node's (compare-and-delete).
    const kv = this.#bucket.opened;
    if (kv) for (const d of dropped) void kv.then((b) => b.delete(keyOf(d.id), { previousSeq: d.rev })).catch(() => {});
    count("cluster.nodes_expired");
    this.#forwarder.nodeDied(node);
    const stopped = this.#relay.nodeDied(node);
    this.#o.log.warn("coordinator presumed dead", {
      node: this.#node,
      peer: node,
      silent_ms: this.#o.timing.nodeTimeoutMs,
      mirrors_dropped: dropped.length,
      relayed_requests_stopped: stopped,
      reason: "no heartbeat",
    });
  }

  // ——— fleet view ———

  /** After a reconnect the watch may be stale (and a memory bucket gone with a restarted server): redo both. */
  async #followStatus(): Promise<void> {
    for await (const s of this.#nc.status()) {
      if (this.#closed) return;
      if (s.type === "reconnect") {
        this.#natsUp = true;
        this.#startGate.reconnected(this.#o.clock.nowMs());
        this.#nodes.forgiveAll(this.#o.clock.nowMs());
        this.#forwarder.heardAll();
        this.#o.log.info("cluster: NATS reconnected; re-reading the fleet view", { node: this.#node });
        this.#bucket.reconnected();
        this.#owned.forgetRevisions();
        this.#publish();
      } else if (s.type === "disconnect") {
        this.#natsUp = false;
        this.#startGate.disconnected();
        // Nothing can be forwarded now: route over this node's own Macs at once. Requests already forwarded stay
        // with their owners (which keep running them) until the connection is back.
        this.#mirrored.dropAll();
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
      this.#mirrored.delete(id);
      return;
    }
    const snap = decodeSnapshot(e.string());
    if (!snap || snap.providerId !== id || snap.node === this.#node) return;
    // One of ours, written elsewhere since our last write: the Mac moved; our stale stream ends (synchronously,
    // removing its record), and its new home is mirrored right away.
    if (this.#owned.has(id) && !this.#owned.writtenElsewhere(id, snap.node, e.revision)) return;
    this.#mirrored.put(snap, e.revision);
  }
}
