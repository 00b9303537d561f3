/**
 * A tiny grpc-js server that plays the coordinator for fleet tests: it checks the provider token, answers
 * Register with a RegisterAck, records every frame, and lets a test send requests and wait for frames.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  CoordinatorMessageSchema,
  ProviderService,
  type CoordinatorMessage,
  type ProviderMessage,
  type Register,
} from "../../../../gen/coordinator/provider/v1/provider_pb.js";
import { grpcServiceDefinition } from "../../../../src/protocol/grpc-service.js";

export const GOOD_TOKEN = "ptok_good";

type CoordinatorInit = MessageInitShape<typeof CoordinatorMessageSchema>;

/** One provider stream as the fake coordinator sees it. */
export class FakeSession {
  register: Register | undefined;
  readonly frames: ProviderMessage[] = [];
  ended = false;
  readonly #waiters = new Set<() => void>();

  constructor(readonly call: grpc.ServerDuplexStream<ProviderMessage, CoordinatorMessage>) {}

  push(m: ProviderMessage): void {
    this.frames.push(m);
    this.#notify();
  }

  markEnded(): void {
    this.ended = true;
    this.#notify();
  }

  #notify(): void {
    for (const w of [...this.#waiters]) w();
  }

  send(init: CoordinatorInit): void {
    this.call.write(create(CoordinatorMessageSchema, init));
  }

  /** Sends a chat-completions request. */
  infer(requestId: string, model: string, body: Record<string, unknown>, maxTokens = 0): void {
    this.send({
      msg: {
        case: "inferenceRequest",
        value: {
          requestId,
          model,
          bodyJson: new TextEncoder().encode(JSON.stringify(body)),
          traits: { maxTokens, stream: true },
        },
      },
    });
  }

  /** Waits until `pred` holds over the frames so far (re-checked on each frame and on stream end). */
  async until<T>(pred: () => T | undefined | false, timeoutMs = 5000, what = "condition"): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = pred();
      if (v) return v;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      const waiters = this.#waiters;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(left, 50));
        function done() {
          clearTimeout(t);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
  }

  /** Frames about one request, in arrival order. */
  framesFor(requestId: string): ProviderMessage[] {
    return this.frames.filter((f) => {
      const v = f.msg.value as { requestId?: string } | undefined;
      return v !== undefined && "requestId" in v && v.requestId === requestId;
    });
  }

  /** Waits for InferenceComplete or InferenceError for `requestId`; returns all its frames. */
  async finished(requestId: string, timeoutMs = 5000): Promise<ProviderMessage[]> {
    await this.until(
      () =>
        this.framesFor(requestId).some((f) => f.msg.case === "inferenceComplete" || f.msg.case === "inferenceError"),
      timeoutMs,
      `end of ${requestId}`,
    );
    return this.framesFor(requestId);
  }
}

/** Options of {@link FakeCoordinator.start}. */
export interface FakeCoordinatorOptions {
  heartbeatIntervalMs?: number;
  desiredModels?: string[];
}

/** The fake coordinator server. */
export class FakeCoordinator {
  readonly sessions: FakeSession[] = [];
  #sessionWaiters = new Set<() => void>();

  private constructor(
    readonly server: grpc.Server,
    readonly port: number,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(options: FakeCoordinatorOptions = {}): Promise<FakeCoordinator> {
    const server = new grpc.Server();
    let self!: FakeCoordinator;
    server.addService(grpcServiceDefinition(ProviderService), {
      connect(call: grpc.ServerDuplexStream<ProviderMessage, CoordinatorMessage>) {
        const session = new FakeSession(call);
        call.on("data", (m: ProviderMessage) => {
          if (!session.register) {
            if (m.msg.case !== "register")
              return call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details: "register first" });
            if (m.msg.value.authToken !== GOOD_TOKEN) {
              self.sessions.push(session);
              self.#notify();
              return call.emit("error", { code: grpc.status.UNAUTHENTICATED, details: "unknown provider token" });
            }
            session.register = m.msg.value;
            self.sessions.push(session);
            self.#notify();
            session.send({
              msg: {
                case: "registerAck",
                value: {
                  providerId: `prov-${self.sessions.length}`,
                  heartbeatIntervalMs: options.heartbeatIntervalMs ?? 100,
                  desiredModels: options.desiredModels ?? [],
                },
              },
            });
          }
          session.push(m);
        });
        call.on("end", () => call.end());
        call.on("error", () => {});
        call.on("close", () => session.markEnded());
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    self = new FakeCoordinator(server, port);
    return self;
  }

  #notify(): void {
    for (const w of [...this.#sessionWaiters]) w();
  }

  /** Waits for the `n`-th session (1-based) to exist. */
  async session(n = 1, timeoutMs = 5000): Promise<FakeSession> {
    const deadline = Date.now() + timeoutMs;
    while (this.sessions.length < n) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for session ${n}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, 50);
        const waiters = this.#sessionWaiters;
        function done() {
          clearTimeout(t);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
    return this.sessions[n - 1]!;
  }

  close(): void {
    this.server.forceShutdown();
  }
}
