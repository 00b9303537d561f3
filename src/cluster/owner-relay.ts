/**
 * The owning side of cluster dispatch: this node holds the Mac's stream, so it alone admits work on it. A
 * forwarded request is re-checked with the same pick the requester ran, over this one Mac and this node's own
 * accounting (which counts every node's requests on it); a stale requester gets an explicit refusal, never a
 * double booking. Accepted requests are sent to the Mac and its events relayed, in order, to the requesting
 * node, with a keep-alive beat for each running request every `beatMs` so the requester can tell a slow Mac from
 * a dead owner. The requester settles and bills; the owner only executes and counts the Mac's load.
 */
import { charsToTokens, outputChars } from "../dispatch/attempt.js";
import type { ProviderDirectory } from "../dispatch/provider-channel.js";
import type { ProviderEvent } from "../inference/types.js";
import type { ProviderRegistry } from "../registry/provider-registry.js";
import type { PickResult, RouteRequest } from "../scheduler/types.js";
import { count } from "../telemetry/metrics.js";
import type { Clock } from "../util/clock.js";
import {
  type ClusterSubjects,
  type DispatchAnswer,
  type RelayFrame,
  bytesOf,
  decodeCancel,
  decodeDispatch,
  decodeLoad,
  encodeRelayBatches,
} from "./cluster-messages.js";
import type { ClusterTransport } from "./cluster-transport.js";
import { relayPieces } from "./relay-chunks.js";

export interface OwnerRelayOptions {
  subjects: ClusterSubjects;
  transport: ClusterTransport;
  registry: ProviderRegistry;
  /** The Macs whose streams this node holds (the provider service), and nothing else. */
  local: ProviderDirectory;
  /** The scheduler binding's owner check (scheduler-binding.ts). */
  ownerRoute(providerId: string, req: RouteRequest): PickResult;
  clock: Clock;
  wallNowMs: () => number;
  /** This node's current view of one of its Macs, sent with a refusal so the requester's mirror catches up. */
  viewOf?(providerId: string): unknown;
  /**
   * Runs `task` after the messages already received are handled (e.g. `setImmediate`). Used to start an admitted
   * request only after a cancel that arrived with it. Absent: requests are started at once.
   */
  defer?(task: () => void): void;
  /**
   * With {@link deferBriefly}: whether a dispatch sent at `sentAtMs` (requester's wall clock) may start after only
   * the messages read with it, skipping the turn of {@link defer} (start-gate.ts says when that is safe).
   */
  startsAtOnce?(sentAtMs: number | undefined): boolean;
  /**
   * Runs `task` once the messages read together with the current one are handled (e.g. `queueMicrotask`). Events
   * going to one node are batched into one message over this short wait (over {@link defer}'s when absent; with
   * neither, each is sent at once): a turn of `setImmediate` on a busy owner waited behind every socket read of
   * the loop's poll phase, p90 ~40 ms and p99 ~100 ms with 256 streams over 3 nodes on 2 cores, which was most of
   * the added first-token time of forwarding.
   */
  deferBriefly?(task: () => void): void;
}

interface Relay {
  requestId: string;
  providerId: string;
  from: string;
  started: boolean;
}

const keyOf = (requestId: string, providerId: string) => `${providerId}\u0000${requestId}`;

export class OwnerRelay {
  readonly #o: OwnerRelayOptions;
  readonly #relays = new Map<string, Relay>();
  /** Events not sent yet, per requesting node, in order. */
  readonly #outbox = new Map<string, RelayFrame[]>();
  #flushPending = false;

  constructor(options: OwnerRelayOptions) {
    this.#o = options;
  }

  /** Requests running here for other nodes. */
  get running(): number {
    return this.#relays.size;
  }

  /** Admits (or refuses) a forwarded request; the answer goes back to the requester at once. */
  dispatch(data: Uint8Array): DispatchAnswer {
    const answer = this.#admit(data);
    count("cluster.owner_decisions", { outcome: answer.ok ? "accepted" : "refused" });
    return answer;
  }

  #admit(data: Uint8Array): DispatchAnswer {
    const o = this.#o;
    const d = decodeDispatch(data);
    if (!d) return { ok: false, reason: "malformed dispatch" };
    // The requester stopped waiting (this node was paused or slow) and has moved on: starting it now could run
    // the request on two Macs at once.
    if (o.wallNowMs() > d.notAfterMs) return { ok: false, reason: "expired" };
    if (!o.local.channel(d.providerId) || !o.registry.get(d.providerId))
      return { ok: false, reason: "not connected here" };
    const key = keyOf(d.requestId, d.providerId);
    if (this.#relays.has(key)) return { ok: false, reason: "already running" };
    const decision = o.ownerRoute(d.providerId, {
      requestId: d.requestId,
      model: d.model,
      traits: d.traits,
      shape: d.shape,
      exclude: new Set(),
      ...(d.callerAccountId !== undefined ? { callerAccountId: d.callerAccountId } : {}),
      ...(d.pinnedAccountId !== undefined ? { pinnedAccountId: d.pinnedAccountId } : {}),
    });
    if (decision.kind !== "picked") {
      const view = o.viewOf?.(d.providerId);
      return {
        ok: false,
        reason: decision.kind === "queue" ? decision.reason : decision.code,
        ...(view !== undefined ? { snapshot: view } : {}),
      };
    }
    const now = o.clock.nowMs();
    const prompt = d.traits.estimatedPromptTokens;
    o.registry.addInflight(d.providerId, {
      requestId: d.requestId,
      model: d.model,
      reservedTokens: decision.reservedTokens,
      usedTokens: prompt,
      remainingOutputTokens: Math.max(0, decision.reservedTokens - prompt),
      promptTokens: prompt,
      startedAtMs: now,
      seenByProvider: false,
    });
    if (decision.cold) o.registry.markPendingLoad(d.providerId, d.model, now);
    const relay: Relay = { requestId: d.requestId, providerId: d.providerId, from: d.from, started: false };
    this.#relays.set(key, relay);
    const send = () =>
      o.local.channel(d.providerId)?.dispatch(
        {
          requestId: d.requestId,
          model: d.model,
          bodyJson: bytesOf(d.body),
          traits: d.traits,
          ...(d.traceContext ? { traceContext: d.traceContext } : {}),
        },
        (e) => this.#relay(key, relay, e),
      ) === true;
    if (!o.defer) {
      if (send()) return { ok: true };
      this.#end(key, relay);
      return { ok: false, reason: "stream closed" };
    }
    // Admitted (its slot is counted from now on), but sent to the Mac only after the messages that arrived with
    // this one are handled: a dispatch that sat in a requester's buffer while NATS was away arrives together with
    // the cancel the requester sent when it gave up on it, and must never start.
    const later = o.deferBriefly && o.startsAtOnce?.(d.sentAtMs) ? o.deferBriefly : o.defer;
    later(() => {
      if (this.#relays.get(key) !== relay || send()) return;
      this.#relay(key, relay, { kind: "disconnected", message: "the Mac's stream closed before the request started" });
    });
    return { ok: true };
  }

  /** The requester stopped the request (consumer gone, lost a race, gave up on the answer). */
  cancel(data: Uint8Array): void {
    const c = decodeCancel(data);
    const relay = c && this.#relays.get(keyOf(c.requestId, c.providerId));
    if (!c || !relay) return;
    this.#o.local.channel(c.providerId)?.cancel(c.requestId, c.reason);
    this.#end(keyOf(c.requestId, c.providerId), relay);
  }

  /** Another node's warm-pool planner asks for a load on one of this node's Macs. */
  load(data: Uint8Array): void {
    const l = decodeLoad(data);
    const rec = l && this.#o.registry.get(l.providerId);
    const channel = l && this.#o.local.channel(l.providerId);
    if (!l || !rec || !channel || rec.pendingLoads.has(l.model)) return;
    if (!rec.models.some((m) => m.id === l.model)) return; // never ask a Mac for a model it did not advertise
    if (rec.slots.some((s) => s.model === l.model)) return;
    this.#o.registry.markPendingLoad(l.providerId, l.model, this.#o.clock.nowMs());
    channel.loadModel(l.model);
  }

  /** One keep-alive beat per running request, batched per requesting node. Call every beat interval. */
  beat(): void {
    const byNode = new Map<string, RelayFrame[]>();
    for (const r of this.#relays.values()) {
      let frames = byNode.get(r.from);
      if (!frames) byNode.set(r.from, (frames = []));
      frames.push({ requestId: r.requestId, providerId: r.providerId });
    }
    for (const [node, frames] of byNode) this.#publish(node, frames);
  }

  /** The requesting node is presumed dead: nobody is left to answer, so its requests stop at the Macs. */
  nodeDied(node: string): number {
    let n = 0;
    for (const [key, r] of [...this.#relays])
      if (r.from === node) {
        this.#o.local.channel(r.providerId)?.cancel(r.requestId, `requesting coordinator ${node} is gone`);
        this.#end(key, r);
        n++;
      }
    return n;
  }

  #relay(key: string, r: Relay, e: ProviderEvent): void {
    if (this.#relays.get(key) !== r) return;
    const { registry } = this.#o;
    if (!r.started) {
      r.started = true;
      registry.markStarted(r.providerId, r.requestId);
    }
    if (e.kind === "chunk") {
      registry.addUsedTokens(r.providerId, r.requestId, charsToTokens(outputChars(e.deltas)));
    }
    if (e.kind === "complete" || e.kind === "error" || e.kind === "disconnected") this.#end(key, r);
    // A large chunk goes as several, each small enough for a relay message (relay-chunks.ts).
    const pieces = e.kind === "chunk" ? relayPieces(e.deltas) : [];
    const events: ProviderEvent[] = pieces.length > 1 ? pieces.map((deltas) => ({ kind: "chunk", deltas })) : [e];
    const out = events.map((event): RelayFrame => ({ requestId: r.requestId, providerId: r.providerId, event }));
    const later = this.#o.deferBriefly ?? this.#o.defer;
    if (!later) {
      this.#publish(r.from, out);
      return;
    }
    let frames = this.#outbox.get(r.from);
    if (!frames) this.#outbox.set(r.from, (frames = []));
    frames.push(...out);
    if (this.#flushPending) return;
    this.#flushPending = true;
    later(() => this.#flush());
  }

  #flush(): void {
    this.#flushPending = false;
    for (const [node, frames] of this.#outbox) this.#publish(node, frames);
    this.#outbox.clear();
  }

  /** Batched under NATS's message limit: ten thousand beats, or a few large chunks, would not fit in one. */
  #publish(node: string, frames: readonly RelayFrame[]): void {
    for (const m of encodeRelayBatches(frames)) this.#o.transport.publish(this.#o.subjects.events(node), m);
  }

  #end(key: string, r: Relay): void {
    this.#relays.delete(key);
    this.#o.registry.removeInflight(r.providerId, r.requestId);
  }
}
