/**
 * The requesting side of cluster dispatch: a {@link ProviderChannel} for each Mac another coordinator owns.
 * The dispatcher runs exactly as for a local Mac (deadlines, deferred commit, failover); only the channel is
 * remote. A dispatch is one NATS request to the owner, answered at once: accepted (the Mac's events follow on
 * this node's events subject) or refused (the owner's fresher view says no: a capacity-shaped error, so the
 * dispatcher tries its next candidate without blaming the Mac). An owner that does not answer, goes silent
 * mid-request (`silenceMs` without an event or a keep-alive beat) or is presumed dead ends the attempt as a
 * disconnect, which fails over invisibly before content like a local stream that broke.
 */
import type { InferenceDispatch, ProviderChannel } from "../dispatch/provider-channel.js";
import type { ProviderEvent } from "../inference/types.js";
import { count } from "../telemetry/metrics.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";
import {
  type ClusterSubjects,
  type ForwardedCancel,
  type ForwardedDispatch,
  type ForwardedLoad,
  type RelayFrame,
  decodeAnswer,
  encode,
  textOf,
} from "./cluster-messages.js";
import { NotDeliveredError, type ClusterTransport } from "./cluster-transport.js";

export interface ForwarderOptions {
  /** This node's id (where the owner sends the events). */
  self: string;
  subjects: ClusterSubjects;
  transport: ClusterTransport;
  clock: Clock;
  /** Wall clock, ms: the owner refuses a dispatch that arrives after `now + dispatchTimeoutMs` by its own. */
  wallNowMs: () => number;
  /** How long the owner has to accept or refuse. */
  dispatchTimeoutMs: number;
  /** An accepted request with neither an event nor a keep-alive beat for this long has lost its owner. */
  silenceMs: number;
  log: Logger;
  /**
   * Largest message the bus carries (NATS `max_payload`, 1 MiB by default, below `MAX_BODY_BYTES`): a request
   * whose dispatch would exceed it cannot reach another node's Mac, and fails over at once to one that needs no
   * forwarding. Undefined: no check.
   */
  maxMessageBytes?: number | undefined;
  /** An owner's refusal carried its view of the Mac: refresh the mirror before the request is picked again. */
  onOwnerView?(node: string, snapshot: unknown): void;
}

interface Pending {
  requestId: string;
  providerId: string;
  node: string;
  onEvent: (e: ProviderEvent) => void;
  lastHeardMs: number;
}

/** What an owner may relay (a refusal comes only as the dispatch's answer). */
const EVENT_KINDS: ReadonlySet<string> = new Set(["accepted", "chunk", "complete", "error", "disconnected"]);
const isTerminal = (e: ProviderEvent) =>
  e.kind === "complete" || e.kind === "error" || e.kind === "disconnected" || e.kind === "refused";
const keyOf = (requestId: string, providerId: string) => `${providerId}\u0000${requestId}`;

export class Forwarder {
  readonly #o: ForwarderOptions;
  readonly #pending = new Map<string, Pending>();

  constructor(options: ForwarderOptions) {
    this.#o = options;
  }

  /** The channel to a Mac whose stream `node` owns. */
  channel(providerId: string, node: string): ProviderChannel {
    return {
      providerId,
      dispatch: (req, onEvent) => this.#dispatch(providerId, node, req, onEvent),
      cancel: (requestId, reason) => this.#cancel(providerId, requestId, reason),
      loadModel: (model) => {
        const m: ForwardedLoad = { providerId, model };
        this.#o.transport.publish(this.#o.subjects.load(node), encode(m));
      },
    };
  }

  /** Requests forwarded and not yet ended. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Frames the owners relayed to this node: the Mac's events, or keep-alive beats. */
  receive(frames: readonly RelayFrame[]): void {
    const now = this.#o.clock.nowMs();
    for (const f of frames) {
      const p = this.#pending.get(keyOf(f.requestId, f.providerId));
      if (!p) continue;
      p.lastHeardMs = now;
      if (f.event === undefined) continue;
      if (typeof f.event !== "object" || f.event === null || !EVENT_KINDS.has(f.event.kind)) continue;
      this.#deliver(p, f.event);
    }
  }

  /**
   * This node's own connection to the bus is back: nothing could be heard while it was down, so every forward's
   * silence counts from now (its owner may have run it all along, and its events and beats resume).
   */
  heardAll(): void {
    const now = this.#o.clock.nowMs();
    for (const p of this.#pending.values()) p.lastHeardMs = now;
  }

  /** Ends every forward whose owner has been silent too long. Call about once a second. */
  sweep(): void {
    const now = this.#o.clock.nowMs();
    for (const p of [...this.#pending.values()])
      if (now - p.lastHeardMs >= this.#o.silenceMs) {
        this.#sendCancel(p, "owner silent");
        this.#deliver(p, {
          kind: "disconnected",
          message: `coordinator ${p.node} owning the provider went silent for ${now - p.lastHeardMs} ms`,
        });
      }
  }

  /**
   * `node` is presumed dead: its Macs' requests end as disconnects (they fail over if nothing was shown). Each is
   * cancelled there too: "presumed" dead may be only cut off (NATS restarting), and a dispatch this node's client
   * still holds is then delivered after the reconnect — with its cancel right behind it, so it never starts.
   */
  nodeDied(node: string): void {
    for (const p of [...this.#pending.values()])
      if (p.node === node) {
        this.#sendCancel(p, "owner presumed dead");
        this.#deliver(p, { kind: "disconnected", message: `coordinator ${node} owning the provider is gone` });
      }
  }

  #dispatch(providerId: string, node: string, req: InferenceDispatch, onEvent: (e: ProviderEvent) => void): boolean {
    const key = keyOf(req.requestId, providerId);
    if (this.#pending.has(key)) return false;
    const o = this.#o;
    const p: Pending = { requestId: req.requestId, providerId, node, onEvent, lastHeardMs: o.clock.nowMs() };
    this.#pending.set(key, p);
    const m: ForwardedDispatch = {
      requestId: req.requestId,
      providerId,
      model: req.model,
      body: textOf(req.bodyJson),
      traits: req.traits,
      shape: req.shape ?? "base",
      from: o.self,
      notAfterMs: o.wallNowMs() + o.dispatchTimeoutMs,
      sentAtMs: o.wallNowMs(),
      ...(req.callerAccountId !== undefined ? { callerAccountId: req.callerAccountId } : {}),
      ...(req.pinnedAccountId !== undefined ? { pinnedAccountId: req.pinnedAccountId } : {}),
      ...(req.traceContext ? { traceContext: req.traceContext } : {}),
    };
    const data = encode(m);
    if (o.maxMessageBytes !== undefined && data.length > o.maxMessageBytes) {
      count("cluster.forwards", { outcome: "too_large" });
      // Capacity-shaped: the next candidate is tried and no breaker moves (the Mac did nothing wrong).
      const message = `request too large to forward to coordinator ${node}: ${data.length} bytes > NATS max_payload ${o.maxMessageBytes}`;
      queueMicrotask(() => {
        if (this.#pending.get(key) === p)
          this.#deliver(p, { kind: "error", statusCode: 503, reason: "capacity", message });
      });
      return true;
    }
    o.transport.request(o.subjects.dispatch(node), data, o.dispatchTimeoutMs).then(
      (data) => {
        if (this.#pending.get(key) !== p) return;
        const answer = decodeAnswer(data);
        count("cluster.forwards", { outcome: answer?.ok ? "accepted" : answer ? "refused" : "unanswered" });
        if (answer?.ok) {
          p.lastHeardMs = o.clock.nowMs();
          return;
        }
        if (!answer) {
          // Whatever it decided, nobody will consume it here.
          this.#sendCancel(p, "unreadable answer");
          this.#deliver(p, { kind: "disconnected", message: `coordinator ${node} answered unreadably` });
          return;
        }
        // Refused on a fresher view than ours: the mirror takes the owner's view, then the request is picked again.
        if (answer.snapshot !== undefined) o.onOwnerView?.(node, answer.snapshot);
        this.#deliver(p, { kind: "refused", message: `owner ${node} refused: ${answer.reason}` });
      },
      (e: unknown) => {
        if (this.#pending.get(key) !== p) return;
        count("cluster.forwards", { outcome: "unanswered" });
        if (e instanceof NotDeliveredError) {
          this.#deliver(p, {
            kind: "disconnected",
            message: `coordinator ${node} did not get the request: ${e.message}`,
          });
          return;
        }
        // Unknown whether the owner got it (a timeout, or the connection lost while waiting; after a reconnect the
        // client can deliver a dispatch it had buffered). Running it elsewhere now could run it twice: the owner's
        // events or keep-alive beats for it keep it here, and the silence sweep ends it (with a cancel) otherwise.
      },
    );
    return true;
  }

  #cancel(providerId: string, requestId: string, reason: string): void {
    const p = this.#pending.get(keyOf(requestId, providerId));
    if (!p) return;
    this.#pending.delete(keyOf(requestId, providerId));
    this.#sendCancel(p, reason);
  }

  #sendCancel(p: Pending, reason: string): void {
    const m: ForwardedCancel = { requestId: p.requestId, providerId: p.providerId, reason };
    this.#o.transport.publish(this.#o.subjects.cancel(p.node), encode(m));
  }

  #deliver(p: Pending, e: ProviderEvent): void {
    if (isTerminal(e)) this.#pending.delete(keyOf(p.requestId, p.providerId));
    p.onEvent(e);
  }
}
