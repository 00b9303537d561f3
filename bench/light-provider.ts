/**
 * A lightweight provider client for the capacity benchmark: it speaks the real provider protocol (grpc-js,
 * `ProviderService.Connect`, protobuf-es frames) but does nothing else. Frames are serialized once (Register per
 * stream, one shared Heartbeat buffer) and coordinator frames are never decoded, so one process can hold
 * thousands of provider streams, each on its own HTTP/2 connection as real Macs do.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  CoordinatorMessageSchema,
  ProviderMessageSchema,
  ProviderStatus,
  SlotState,
  ThermalState,
} from "../gen/coordinator/provider/v1/provider_pb.js";
import { simulatedKeySeed } from "../src/tools/fleet/simulated-key-seed.js";
import { keyPairFromSeed, signChallenge } from "../src/protocol/provider-keys.js";

const GB = 1_000_000_000;
const identity = (b: Buffer) => b;
/** A gRPC client of the provider service's Connect stream: same path as the generated service, raw bytes in and out. */
export const RawProviderClient = grpc.makeGenericClientConstructor(
  {
    connect: {
      path: "/coordinator.provider.v1.ProviderService/Connect",
      requestStream: true,
      responseStream: true,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  },
  "ProviderService",
);

/** The Register frame of one simulated provider. */
export function registerBytes(token: string, serial: string, model: string): Buffer {
  const msg = create(ProviderMessageSchema, {
    msg: {
      case: "register",
      value: {
        authToken: token,
        serial,
        version: "0.7.0",
        publicKey: keyPairFromSeed(simulatedKeySeed(serial)).publicKey,
        hardware: { chipName: "Apple M2 Max", chipFamily: "M2", memoryGb: 64, memoryBandwidthGbs: 400, gpuCores: 38 },
        decodeTps: 45,
        prefillTps: 500,
        maxModelSlots: 2,
        models: [
          { id: model, sizeBytes: BigInt(12 * GB), quantization: "4bit", contextLength: 131_072, isVision: false },
        ],
      },
    },
  });
  return Buffer.from(toBinary(ProviderMessageSchema, msg));
}

/** A gRPC status detail without grpc-js's timestamps, so equal causes group together in a report. */
function withoutTimestamps(details: string): string {
  return details.replace(/\s*\([^)]*\d{4}-\d\d-\d\dT[^)]*\).*$/, "");
}

/** A realistic heartbeat: idle, one warm slot. Shared by every stream of a process. */
export function heartbeatBytes(model: string): Buffer {
  const msg = create(ProviderMessageSchema, {
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
              numRunning: 0,
              numWaiting: 0,
              maxConcurrency: 8,
              activeTokenBudgetUsed: 0n,
              activeTokenBudgetMax: 200_000n,
              kvBytesPerToken: 49_152n,
              observedDecodeTps: 45,
              observedPrefillTps: 500,
              modelLoadTimeMs: 9000,
            },
          ],
        },
        warmModels: [model],
      },
    },
  });
  return Buffer.from(toBinary(ProviderMessageSchema, msg));
}

/**
 * One provider stream on its own connection. Like a real Mac, it reconnects with jittered backoff when the
 * stream fails before registering (e.g. the coordinator's accept backlog overflowed during a connect storm);
 * a stream that ends after registering stays ended and is counted.
 */
export class LightProvider {
  registered = false;
  ended = false;
  endDetails = "";
  /** Why each retried attempt ended (grpc-js's timestamps dropped, so equal causes group together). */
  readonly retryDetails: string[] = [];
  /** Connection attempts that failed before the RegisterAck. */
  retries = 0;
  #client!: grpc.Client;
  #call!: grpc.ClientDuplexStream<Buffer, Buffer>;
  #closed = false;
  #retryTimer: NodeJS.Timeout | undefined;
  readonly #address: string;
  readonly #register: Buffer;
  readonly #serial: string;
  readonly #onRegistered: () => void;
  readonly #onEnd: () => void;

  constructor(
    address: string,
    serial: string,
    register: Buffer,
    onRegistered: () => void,
    onEnd: () => void,
    readonly maxRetries = 8,
  ) {
    this.#address = address;
    this.#serial = serial;
    this.#register = register;
    this.#onRegistered = onRegistered;
    this.#onEnd = onEnd;
    this.#open();
  }

  #open(): void {
    const onRegistered = this.#onRegistered;
    this.#client = new RawProviderClient(this.#address, grpc.credentials.createInsecure(), {
      "grpc.use_local_subchannel_pool": 1,
      "grpc.keepalive_time_ms": 10_000,
      "grpc.keepalive_timeout_ms": 5_000,
      "grpc.keepalive_permit_without_calls": 1,
    });
    this.#call = (this.#client as unknown as { connect(): grpc.ClientDuplexStream<Buffer, Buffer> }).connect();
    this.#call.on("data", (bytes: Buffer) => {
      // Until the RegisterAck, frames are decoded: the coordinator first challenges the key. Later ones (none
      // expected while idle but a periodic challenge) are ignored.
      if (this.registered) return;
      const m = fromBinary(CoordinatorMessageSchema, bytes);
      if (m.msg.case === "challenge") {
        const keys = keyPairFromSeed(simulatedKeySeed(this.#serial));
        const signature = signChallenge(keys.privateKey, this.#serial, m.msg.value.nonce);
        this.#call.write(
          Buffer.from(
            toBinary(
              ProviderMessageSchema,
              create(ProviderMessageSchema, {
                msg: { case: "challengeResponse", value: { nonce: m.msg.value.nonce, signature } },
              }),
            ),
          ),
        );
        return;
      }
      this.registered = true;
      onRegistered();
    });
    let done = false;
    const end = (details: string) => {
      if (done || this.ended) return;
      done = true;
      if (!this.registered && !this.#closed && this.retries < this.maxRetries) {
        this.retries++;
        this.retryDetails.push(withoutTimestamps(details));
        this.#client.close();
        this.#retryTimer = setTimeout(
          () => this.#open(),
          1_000 * 2 ** Math.min(this.retries, 4) * (0.5 + Math.random()),
        );
        return;
      }
      this.ended = true;
      this.endDetails = withoutTimestamps(details);
      this.#onEnd();
    };
    this.#call.on("error", (e: grpc.ServiceError) => end(e.details ?? e.message));
    this.#call.on("status", (s: grpc.StatusObject) => end(s.details));
    this.#call.write(this.#register);
  }

  heartbeat(bytes: Buffer): void {
    if (!this.ended) this.#call.write(bytes);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.ended = true;
    this.#call.cancel();
    this.#client.close();
  }
}
