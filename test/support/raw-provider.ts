/**
 * A hand-driven provider for tests of the provider edge: one grpc-js stream whose every frame the test writes
 * itself, so it can lie, flood, skip the key challenge or send values no honest Mac would. It answers key
 * challenges with its key unless told otherwise, and records everything the coordinator sends.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  FinishReason,
  ProviderMessageSchema,
  ProviderService,
  ProviderStatus,
  SlotState,
  ThermalState,
  type CoordinatorMessage,
  type ProviderMessage,
} from "../../gen/coordinator/provider/v1/provider_pb.js";
import { grpcServiceDefinition } from "../../src/protocol/grpc-service.js";
import { keyPairFromSeed, signChallenge, type ProviderKeyPair } from "../../src/protocol/provider-keys.js";
import { simulatedKeySeed } from "../../src/tools/fleet/simulated-key-seed.js";

type Init = MessageInitShape<typeof ProviderMessageSchema>;
type RegisterInit = Extract<NonNullable<Init["msg"]>, { case: "register" }>["value"];

// The generated serializer, except that a Uint8Array goes out as is (for malformed frames).
const definition = grpcServiceDefinition(ProviderService);
const connectMethod = definition.connect!;
const Client = grpc.makeGenericClientConstructor(
  {
    connect: {
      ...connectMethod,
      requestSerialize: (m: unknown) => (m instanceof Uint8Array ? Buffer.from(m) : connectMethod.requestSerialize(m)),
    },
  },
  "ProviderService",
);

export interface RawProviderOptions {
  grpcPort: number;
  /** How to answer challenges: with the key (default), a wrong signature, or not at all. */
  answerChallenges?: "sign" | "garbage" | "ignore";
  /** The key pair (default: the simulator's key for the serial of the first Register). */
  keys?: ProviderKeyPair;
  /** A client (one channel) shared by many providers, from {@link rawProviderClient}; default: a client of its own. */
  client?: grpc.Client;
}

/** A client whose channel many RawProviders can share (thousands of short streams, one connection). */
export function rawProviderClient(grpcPort: number): grpc.Client {
  return new Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
}

export class RawProvider {
  readonly received: CoordinatorMessage[] = [];
  readonly status: Promise<grpc.StatusObject>;
  readonly #client: grpc.Client;
  readonly #call: grpc.ClientDuplexStream<ProviderMessage, CoordinatorMessage>;
  #keys: ProviderKeyPair | undefined;
  #serial = "";
  #waiters: { pred: (m: CoordinatorMessage) => boolean; resolve: (m: CoordinatorMessage) => void }[] = [];

  constructor(public o: RawProviderOptions) {
    this.#keys = o.keys;
    this.#client = o.client ?? rawProviderClient(o.grpcPort);
    this.#call = (
      this.#client as unknown as { connect(): grpc.ClientDuplexStream<ProviderMessage, CoordinatorMessage> }
    ).connect();
    this.status = new Promise((resolve) => this.#call.on("status", resolve));
    this.#call.on("error", () => undefined);
    this.#call.on("data", (m: CoordinatorMessage) => this.#onMessage(m));
  }

  #onMessage(m: CoordinatorMessage): void {
    this.received.push(m);
    if (m.msg.case === "inferenceRequest") void this.#onInference?.(m.msg.value);
    if (m.msg.case === "challenge" && this.o.answerChallenges !== "ignore") {
      const nonce = m.msg.value.nonce;
      const signature =
        this.o.answerChallenges === "garbage" || !this.#keys
          ? new Uint8Array(64).fill(7)
          : signChallenge(this.#keys.privateKey, this.#serial, nonce);
      this.send({ msg: { case: "challengeResponse", value: { nonce, signature } } });
    }
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.pred(m)) return true;
      w.resolve(m);
      return false;
    });
  }

  /** Sends a Register; `publicKey` defaults to this provider's key. */
  register(r: RegisterInit): void {
    this.#serial = r.serial ?? "";
    this.#keys ??= keyPairFromSeed(simulatedKeySeed(this.#serial));
    this.send({ msg: { case: "register", value: { version: "0.7.0", publicKey: this.#keys.publicKey, ...r } } });
  }

  /** Registers and resolves with the provider id of the RegisterAck (rejects if the stream ends first). */
  async registerAndWait(r: RegisterInit): Promise<string> {
    this.register(r);
    const ack = await Promise.race([
      this.next((m) => m.msg.case === "registerAck"),
      this.status.then((s) =>
        Promise.reject(new Error(`stream ended before RegisterAck: ${grpc.status[s.code]} ${s.details}`)),
      ),
    ]);
    return ack.msg.case === "registerAck" ? ack.msg.value.providerId : "";
  }

  /** A heartbeat with `model` loaded and idle, room for `maxConcurrency` requests (a realistic M2 Max). */
  heartbeat(model: string, o: { maxConcurrency?: number; budgetMax?: bigint; decodeTps?: number } = {}): boolean {
    return this.send({
      msg: {
        case: "heartbeat",
        value: {
          status: ProviderStatus.IDLE,
          system: { memoryPressure: 0.2, cpuUsage: 0.05, thermalState: ThermalState.NOMINAL },
          capacity: {
            totalMemoryGb: 64,
            freeForLoadGb: 30,
            slots: [
              {
                model,
                state: SlotState.IDLE,
                maxConcurrency: o.maxConcurrency ?? 8,
                activeTokenBudgetMax: o.budgetMax ?? 200_000n,
                kvBytesPerToken: 49_152n,
                observedDecodeTps: o.decodeTps ?? 45,
                observedPrefillTps: 500,
              },
            ],
          },
          warmModels: [model],
        },
      },
    });
  }

  /**
   * Serves every InferenceRequest: accepted, `text` as one content chunk, then a completion claiming `usage`
   * (by default a plausible honest count). Returns the request ids served.
   */
  serve(o: {
    text?: string;
    delayMs?: number;
    chunks?: number;
    chunkDelayMs?: number;
    usage?: (req: { requestId: string; bodyJson: Uint8Array }) => {
      promptTokens?: number;
      completionTokens?: number;
      reasoningTokens?: number;
    };
  }): string[] {
    const served: string[] = [];
    const text = o.text ?? "Hello from a raw provider.";
    this.#onInference = async (req) => {
      served.push(req.requestId);
      this.send({ msg: { case: "inferenceAccepted", value: { requestId: req.requestId } } });
      if (o.delayMs) await new Promise((r) => setTimeout(r, o.delayMs));
      // The text in `chunks` pieces at word boundaries, `chunkDelayMs` apart (a machine decoding at its pace).
      const words = text.split(/(?<= )/);
      const n = Math.max(1, Math.min(o.chunks ?? 1, words.length));
      for (let i = 0; i < n; i++) {
        const piece = words
          .slice(Math.floor((i * words.length) / n), Math.floor(((i + 1) * words.length) / n))
          .join("");
        const deltas = [
          ...(i === 0 ? [{ delta: { case: "role" as const, value: "assistant" } }] : []),
          { delta: { case: "content" as const, value: piece } },
        ];
        this.send({ msg: { case: "inferenceChunk", value: { requestId: req.requestId, deltas } } });
        if (o.chunkDelayMs && i < n - 1) await new Promise((r) => setTimeout(r, o.chunkDelayMs));
      }
      const usage = o.usage?.(req) ?? { promptTokens: 20, completionTokens: Math.ceil(text.length / 4) };
      this.send({
        msg: { case: "inferenceComplete", value: { requestId: req.requestId, finishReason: FinishReason.STOP, usage } },
      });
    };
    return served;
  }

  #onInference: ((req: { requestId: string; bodyJson: Uint8Array }) => void | Promise<void>) | undefined;

  send(m: Init): boolean {
    return this.#call.write(create(ProviderMessageSchema, m));
  }

  /** Writes raw bytes as one frame (bypassing the protobuf encoder). */
  sendRaw(bytes: Uint8Array): boolean {
    return (this.#call as unknown as { write(b: unknown): boolean }).write(bytes);
  }

  /** Resolves with the first frame (already received or future) that matches. */
  next(pred: (m: CoordinatorMessage) => boolean): Promise<CoordinatorMessage> {
    const seen = this.received.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ pred, resolve }));
  }

  close(): void {
    this.#call.cancel();
    if (!this.o.client) this.#client.close();
  }
}
