/**
 * One provider's gRPC stream, as an explicit state machine:
 *
 * - `handshaking`: the stream is open; we wait for Register and authenticate its token.
 * - `ready`: registered in the registry; inference frames flow both ways.
 * - `closed`: the stream ended (provider left, was evicted, was replaced by a newer session with the same
 *   serial, or the coordinator shut down). Every request still in flight receives a `disconnected` event
 *   exactly once, so the dispatcher can fail over.
 *
 * The grpc-js handler in provider-service.ts only pumps frames into {@link ProviderSession.receive}.
 */
import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { CoordinatorMessage, ProviderMessage } from "../../gen/coordinator/provider/v1/provider_pb.js";
import type { InferenceDispatch, ProviderChannel } from "../dispatch/provider-channel.js";
import type { ProviderEvent } from "../inference/types.js";
import type { FrameBudget } from "./frame-budget.js";
import { cancelFrame, inferenceRequestFrame, loadModelFrame } from "./coordinator-frames.js";

export type SessionState =
  | { t: "handshaking"; sinceMs: number }
  | { t: "ready"; providerId: string }
  | { t: "closed"; reason: string };

/** Who a session proved to be: set once its registration passed authentication and the key challenge. */
export interface SessionIdentity {
  serial: string;
  accountId: string;
  /** The provider token the session registered with (revoking it ends the session). */
  tokenId: string;
  publicKey: Uint8Array;
}

/** A challenge sent and not yet answered. */
export interface PendingChallenge {
  nonce: Uint8Array;
  sentAtMs: number;
  /** Receives the signature, or undefined when the session ends first. */
  answer(signature: Uint8Array | undefined): void;
}

type Handler = (e: ProviderEvent) => void;

/** Cancelled request ids remembered per session (late frames for them are not foreign). */
const MAX_REMEMBERED_CANCELS = 1024;

/** Frames queued beyond this many (while the peer is not reading) mean the provider is stuck: close it. */
const MAX_QUEUED_FRAMES = 4096;

export class ProviderSession implements ProviderChannel {
  state: SessionState;
  /** Set once Register's token is accepted (the key is proved by the challenge that follows). */
  identity: SessionIdentity | undefined;
  /** A Register is being checked: other frames wait (are dropped) until the RegisterAck. */
  registering = false;
  challenge: PendingChallenge | undefined;
  /** When the session last proved its key (registration or a periodic challenge). */
  lastProvedMs = 0;
  /** The peer address grpc-js reports ("ipv4:1.2.3.4:5678"), for logs. */
  readonly peer: string;
  /** The session's budget on unprompted frames (set when it becomes ready). */
  frames: FrameBudget | undefined;
  /** A heartbeat's clamped claims were logged (once per session). */
  heartbeatClampLogged = false;
  /** Frames for request ids this session does not own, so far (the first is logged). */
  foreignFrames = 0;
  /** Recently cancelled request ids: late frames for them are expected, not foreign. */
  readonly #cancelled = new Set<string>();
  readonly #call: ServerDuplexStream<ProviderMessage, CoordinatorMessage>;
  readonly #handlers = new Map<string, Handler>();
  readonly #queue: CoordinatorMessage[] = [];
  #blocked = false;
  #onClosed: ((reason: string) => void) | undefined;

  constructor(call: ServerDuplexStream<ProviderMessage, CoordinatorMessage>, nowMs: number) {
    this.#call = call;
    this.state = { t: "handshaking", sinceMs: nowMs };
    let peer = "unknown";
    try {
      peer = call.getPeer();
    } catch {
      // a stream that is already gone has no peer
    }
    this.peer = peer;
    call.on("drain", () => this.#flush());
  }

  get providerId(): string {
    return this.state.t === "ready" ? this.state.providerId : "";
  }

  get inflightCount(): number {
    return this.#handlers.size;
  }

  /** Moves to `ready` once the registry has accepted the provider. */
  markReady(providerId: string, onClosed: (reason: string) => void): void {
    if (this.state.t !== "handshaking") return;
    this.state = { t: "ready", providerId };
    this.#onClosed = onClosed;
  }

  dispatch(req: InferenceDispatch, onEvent: Handler): boolean {
    if (this.state.t !== "ready") return false;
    this.#handlers.set(req.requestId, onEvent);
    this.send(inferenceRequestFrame(req.requestId, req.model, req.bodyJson, req.traits, req.traceContext));
    return true;
  }

  cancel(requestId: string, reason: string): void {
    if (!this.#handlers.delete(requestId)) return;
    this.#cancelled.add(requestId);
    if (this.#cancelled.size > MAX_REMEMBERED_CANCELS) this.#cancelled.delete(this.#cancelled.values().next().value!);
    if (this.state.t === "ready") this.send(cancelFrame(requestId, reason));
  }

  loadModel(model: string): void {
    if (this.state.t === "ready") this.send(loadModelFrame(model));
  }

  /**
   * Delivers a provider's per-request event; terminal events unregister the handler. Returns false for a request
   * id the session neither owns nor recently cancelled (a late frame after CancelInference is expected).
   */
  deliver(requestId: string, e: ProviderEvent): boolean {
    const h = this.#handlers.get(requestId);
    if (!h) return this.#cancelled.has(requestId);
    if (e.kind === "complete" || e.kind === "error" || e.kind === "disconnected") this.#handlers.delete(requestId);
    h(e);
    return true;
  }

  /** True if `requestId` is in flight on this session or was recently cancelled. */
  knows(requestId: string): boolean {
    return this.#handlers.has(requestId) || this.#cancelled.has(requestId);
  }

  /** Writes a frame, honouring backpressure: grpc-js buffers, we stop writing until 'drain'. */
  send(msg: CoordinatorMessage): void {
    if (this.state.t === "closed") return;
    if (this.#blocked) {
      if (this.#queue.length >= MAX_QUEUED_FRAMES) {
        this.close("provider not reading its stream", { code: 8, details: "provider not reading its stream" });
        return;
      }
      this.#queue.push(msg);
      return;
    }
    if (!this.#call.write(msg)) this.#blocked = true;
  }

  #flush(): void {
    this.#blocked = false;
    while (this.#queue.length > 0 && !this.#blocked) {
      if (!this.#call.write(this.#queue.shift()!)) this.#blocked = true;
    }
  }

  /**
   * Ends the session. With `status`, the stream ends with that gRPC status; otherwise it ends OK.
   * Idempotent; in-flight requests get `disconnected`.
   */
  close(reason: string, status?: { code: number; details: string }): void {
    if (this.state.t === "closed") return;
    this.state = { t: "closed", reason };
    try {
      if (status) this.#call.emit("error", status);
      else this.#call.end();
    } catch {
      // the stream is already gone; nothing to tell the peer
    }
    this.streamEnded(reason);
  }

  /** Called when the underlying stream is gone (either side). Fails every in-flight request once. */
  streamEnded(reason: string): void {
    // A session closed on purpose keeps that reason (its own stream error, emitted by close(), arrives here first).
    if (this.state.t !== "closed") this.state = { t: "closed", reason };
    else reason = this.state.reason;
    const handlers = [...this.#handlers.entries()];
    this.#handlers.clear();
    this.#queue.length = 0;
    const pending = this.challenge;
    this.challenge = undefined;
    pending?.answer(undefined);
    for (const [, h] of handlers) h({ kind: "disconnected", message: `provider disconnected: ${reason}` });
    const cb = this.#onClosed;
    this.#onClosed = undefined;
    cb?.(reason);
  }
}
