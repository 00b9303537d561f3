/**
 * Child process of the provider-flood benchmark: one provider stream that registers (proving its key) and then
 * either heartbeats politely (`--mode honest`, one per interval) or floods heartbeats as fast as its stream
 * accepts them (`--mode flood`), reconnecting at once whenever the coordinator ends the stream, as an attacker
 * would. Prints one JSON line when `--duration-ms` is over: { sessions, registered, heartbeats, endings }.
 *
 * Args: --address host:port --token T --serial S --mode honest|flood --duration-ms N [--interval-ms N]
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { CoordinatorMessageSchema, ProviderMessageSchema } from "../gen/coordinator/provider/v1/provider_pb.js";
import { simulatedKeySeed } from "../src/tools/fleet/simulated-key-seed.js";
import { keyPairFromSeed, signChallenge } from "../src/protocol/provider-keys.js";
import { parseFlags } from "../src/util/parse-flags.js";
import { heartbeatBytes, RawProviderClient, registerBytes } from "./light-provider.js";

const flags = parseFlags(process.argv.slice(2), {
  address: { type: "string" },
  token: { type: "string" },
  serial: { type: "string" },
  mode: { type: "string" },
  "duration-ms": { type: "string" },
  "interval-ms": { type: "string", default: "5000" },
});
const required = (name: keyof typeof flags): string => {
  const v = flags[name];
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
};
const address = required("address");
const token = required("token");
const serial = required("serial");
const mode = required("mode");
const durationMs = Number(required("duration-ms"));
const intervalMs = Number(flags["interval-ms"]);
const model = "gpt-oss-20b";

const client = new RawProviderClient(address, grpc.credentials.createInsecure());
const keys = keyPairFromSeed(simulatedKeySeed(serial));
const register = registerBytes(token, serial, model);
const heartbeat = heartbeatBytes(model);
const stats = { sessions: 0, registered: 0, heartbeats: 0, endings: {} as Record<string, number> };
const until = Date.now() + durationMs;
let stopped = false;

function open(): void {
  if (stopped || Date.now() >= until) return;
  stats.sessions++;
  const call = (client as unknown as { connect(): grpc.ClientDuplexStream<Buffer, Buffer> }).connect();
  let live = true;
  let timer: NodeJS.Timeout | undefined;
  const flood = () => {
    // As fast as the stream takes them: write until grpc-js buffers, continue on 'drain'.
    while (live && !stopped) {
      stats.heartbeats++;
      if (!call.write(heartbeat)) return;
    }
  };
  call.on("drain", () => mode === "flood" && flood());
  call.on("data", (bytes: Buffer) => {
    const m = fromBinary(CoordinatorMessageSchema, bytes);
    if (m.msg.case === "challenge") {
      const signature = signChallenge(keys.privateKey, serial, m.msg.value.nonce);
      call.write(
        Buffer.from(
          toBinary(
            ProviderMessageSchema,
            create(ProviderMessageSchema, {
              msg: { case: "challengeResponse", value: { nonce: m.msg.value.nonce, signature } },
            }),
          ),
        ),
      );
    } else if (m.msg.case === "registerAck") {
      stats.registered++;
      if (mode === "flood") flood();
      else {
        const beat = () => {
          if (!live || stopped) return;
          stats.heartbeats++;
          call.write(heartbeat);
          timer = setTimeout(beat, intervalMs);
        };
        beat();
      }
    }
  });
  call.on("error", () => undefined);
  call.on("status", (s: grpc.StatusObject) => {
    live = false;
    clearTimeout(timer);
    const key = grpc.status[s.code] ?? String(s.code);
    stats.endings[key] = (stats.endings[key] ?? 0) + 1;
    setImmediate(open);
  });
  call.write(register);
}

open();
setTimeout(() => {
  stopped = true;
  process.stdout.write(`${JSON.stringify(stats)}\n`);
  client.close();
  process.exit(0);
}, durationMs);
