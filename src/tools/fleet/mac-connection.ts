/**
 * The gRPC side of a simulated Mac: one grpc-js client (its own HTTP/2 connection, keepalive on) and one
 * `Connect` bidi call at a time, with backpressure-aware writes. Reconnect policy lives in SimulatedMac.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  ProviderMessageSchema,
  ProviderService,
  type CoordinatorMessage,
} from "../../../gen/coordinator/provider/v1/provider_pb.js";
import { grpcServiceDefinition } from "../../protocol/grpc-service.js";

type ProviderMessageInit = MessageInitShape<typeof ProviderMessageSchema>;

const ProviderClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(ProviderService), "ProviderService");

/** Client channel options. */
export interface ConnectionOptions {
  /** Coordinator address, "host:port". */
  coordinator: string;
  /** Interval between HTTP/2 keepalive pings, ms (default 10000). The server must allow this rate. */
  keepaliveTimeMs?: number;
  /** Ping ack deadline before the connection is declared dead, ms (default 5000). */
  keepaliveTimeoutMs?: number;
}

/** Callbacks of one stream. `onEnd` fires exactly once, with the final gRPC status. */
export interface StreamHandlers {
  onMessage(msg: CoordinatorMessage): void;
  onEnd(status: { code: grpc.status; details: string }): void;
}

/** One open `Connect` stream. */
export class MacStream {
  #closed = false;
  readonly #drainWaiters = new Set<() => void>();
  readonly #call: grpc.ClientDuplexStream<unknown, unknown>;

  constructor(call: grpc.ClientDuplexStream<unknown, unknown>, handlers: StreamHandlers) {
    this.#call = call;
    let ended = false;
    const end = (status: { code: grpc.status; details: string }) => {
      this.#closed = true;
      for (const w of this.#drainWaiters) w();
      this.#drainWaiters.clear();
      if (ended) return;
      ended = true;
      handlers.onEnd(status);
    };
    call.on("data", (m: CoordinatorMessage) => {
      if (!this.#closed) handlers.onMessage(m);
    });
    call.on("drain", () => {
      for (const w of this.#drainWaiters) w();
      this.#drainWaiters.clear();
    });
    // 'error' carries non-OK statuses; 'status' always follows. Listening to 'error' also keeps it from
    // being thrown as an unhandled EventEmitter error.
    call.on("error", (e: grpc.ServiceError) =>
      end({ code: e.code ?? grpc.status.UNKNOWN, details: e.details ?? e.message }),
    );
    call.on("status", (s: grpc.StatusObject) => end({ code: s.code, details: s.details }));
    call.on("end", () => end({ code: grpc.status.OK, details: "stream ended by coordinator" }));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Writes one frame. Resolves true once it may write again (immediately, or after 'drain' when grpc-js
   * buffered too much; with `flush`, once the frame left grpc-js), false when the stream is closed.
   */
  async send(init: ProviderMessageInit, options: { flush?: boolean } = {}): Promise<boolean> {
    if (this.#closed) return false;
    const msg = create(ProviderMessageSchema, init);
    if (options.flush) {
      // Resolves once grpc-js has handed the frame to the HTTP/2 stream (used before a deliberate reset).
      await new Promise<void>((resolve) => {
        this.#drainWaiters.add(resolve);
        this.#call.write(msg, () => resolve());
      });
      return !this.#closed;
    }
    const ok = this.#call.write(msg);
    if (!ok && !this.#closed) await new Promise<void>((resolve) => this.#drainWaiters.add(resolve));
    return !this.#closed;
  }

  /** Half-closes (a polite goodbye); resolves when the coordinator ends the call or after `timeoutMs`. */
  async end(timeoutMs = 1000): Promise<void> {
    if (this.#closed) return;
    const done = new Promise<void>((resolve) => {
      this.#drainWaiters.add(resolve);
      const t = setTimeout(resolve, timeoutMs);
      t.unref();
    });
    this.#call.end();
    await done;
    this.cancel();
  }

  /** Resets the stream at once (RST_STREAM): no goodbye frames. */
  cancel(): void {
    this.#closed = true;
    this.#call.cancel();
  }
}

/** A grpc-js client with its own connection (a local subchannel pool, so Macs never share a socket). */
export class MacConnection {
  readonly #client: grpc.Client & { connect(): grpc.ClientDuplexStream<unknown, unknown> };

  constructor(options: ConnectionOptions) {
    this.#client = new ProviderClient(options.coordinator, grpc.credentials.createInsecure(), {
      "grpc.use_local_subchannel_pool": 1,
      "grpc.keepalive_time_ms": options.keepaliveTimeMs ?? 10_000,
      "grpc.keepalive_timeout_ms": options.keepaliveTimeoutMs ?? 5_000,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
      "grpc.max_send_message_length": 64 * 1024 * 1024,
      // Reconnect pacing is SimulatedMac's job; keep the channel's own backoff short.
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1000,
    }) as unknown as grpc.Client & { connect(): grpc.ClientDuplexStream<unknown, unknown> };
  }

  /** Opens a new `Connect` stream. */
  open(handlers: StreamHandlers): MacStream {
    return new MacStream(this.#client.connect(), handlers);
  }

  /** Closes the channel (and its socket). */
  close(): void {
    this.#client.close();
  }
}
