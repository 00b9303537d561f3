/**
 * A fleet of simulated Macs: `startFleet` builds N SimulatedMacs with deterministic chips, spreads the
 * requested models over them by memory, optionally preloads one model per Mac, and connects them all.
 * `runFleetCli` is the `coordinator fleet` subcommand on top of it.
 */
import { createWriteStream } from "node:fs";
import { parseArgs } from "node:util";
import { defaultCatalog, type CatalogEntry } from "../../models/catalog.js";
import { assignChip, chipProfile, servingChipProfiles, type ChipProfile } from "./chip-profiles.js";
import type { FailureOptions } from "./failure-script.js";
import { fitsEmptyMac, simModelSpec } from "./mac-performance.js";
import { SimulatedMac, type ExecutionEntry, type SimulatedMacOptions } from "./simulated-mac.js";

/** Options of {@link startFleet}. */
export interface FleetOptions {
  /**
   * Coordinator gRPC address, "host:port", or several (active-active coordinators): Mac i connects first to
   * address i mod n and, whenever its stream breaks, reconnects to the next address in rotation.
   */
  coordinator: string | readonly string[];
  /** Provider token shared by every Mac. */
  token: string;
  count: number;
  /** Model ids to serve; each Mac gets those that can load on its memory. */
  models: string[];
  /** Simulated seconds per real second (default 1). */
  timeScale?: number;
  /** No delays at all (gateway benchmarks). */
  instant?: boolean;
  /** Picks chips, serial suffixes and failure draws (default 0). */
  seed?: number;
  /** Provider binary version of every Mac (default "0.7.0"). */
  version?: string;
  /** Chip pool to rotate through (default: every profile with ≥ 48 GB). */
  chips?: readonly ChipProfile[];
  /** Heartbeat period override, real ms (default: the coordinator's RegisterAck value). */
  heartbeatIntervalMs?: number;
  /** Preload one model per Mac right after registering, rotating so every model has warm capacity. */
  warm?: boolean;
  catalog?: readonly CatalogEntry[];
  /** Serial prefix (default "SIM"); serials are `${prefix}-${seed}-${index}`. */
  serialPrefix?: string;
  failures?: FailureOptions;
  /** Reconnect backoff cap, real ms (default 10000; the first delay is 250 ms, doubling, ±20 % jitter). */
  reconnectMaxMs?: number;
  /** Called for every InferenceRequest a Mac carried out (the execution log; see checkExecutionLog). */
  onExecution?: (entry: ExecutionEntry) => void;
  /** Per-Mac overrides, applied last (e.g. an old version or a broken template on Mac 0). */
  perMac?: (index: number) => Partial<SimulatedMacOptions>;
  /** Other SimulatedMac options applied to every Mac. */
  macDefaults?: Partial<SimulatedMacOptions>;
  log?: (line: string) => void;
}

/** A running fleet. */
export interface Fleet {
  macs: SimulatedMac[];
  /** Resolves when every Mac has registered; rejects if one is refused (bad token) or stops first. */
  ready(): Promise<void>;
  /** Registered Macs per coordinator address (every address of the options, 0 when none). */
  connectedBy(): Map<string, number>;
  /** Stops every Mac cleanly. */
  stop(): Promise<void>;
}

/** Builds and connects a fleet. Throws on options no Mac could serve. */
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  if (!Number.isInteger(options.count) || options.count < 1) throw new Error("fleet count must be a positive integer");
  if (options.models.length === 0) throw new Error("fleet needs at least one model");
  const catalog = options.catalog ?? defaultCatalog;
  const specs = options.models.map((id) => simModelSpec(id, catalog));
  // Only chips that can load at least one requested model are useful providers.
  const pool = (options.chips ?? servingChipProfiles).filter((c) =>
    specs.some((s) => fitsEmptyMac(c.memoryGb, s.sizeBytes)),
  );
  if (pool.length === 0) throw new Error(`no chip in the pool can load any of: ${options.models.join(", ")}`);
  const seed = options.seed ?? 0;
  const addresses = typeof options.coordinator === "string" ? [options.coordinator] : [...options.coordinator];
  if (addresses.length === 0) throw new Error("fleet needs at least one coordinator address");
  const macs: SimulatedMac[] = [];
  for (let i = 0; i < options.count; i++) {
    const chip = assignChip(i, seed, pool);
    const onDisk = specs.filter((s) => fitsEmptyMac(chip.memoryGb, s.sizeBytes)).map((s) => s.id);
    const preferred = options.models[i % options.models.length]!;
    const warmModel = onDisk.includes(preferred) ? preferred : onDisk[0]!;
    const mac = new SimulatedMac({
      coordinator: addresses[i % addresses.length]!,
      ...(addresses.length > 1 ? { coordinators: addresses } : {}),
      token: options.token,
      serial: `${options.serialPrefix ?? "SIM"}-${seed}-${String(i).padStart(3, "0")}`,
      chip,
      models: onDisk,
      catalog,
      seed: seed + i,
      ...(options.version === undefined ? {} : { version: options.version }),
      ...(options.timeScale === undefined ? {} : { timeScale: options.timeScale }),
      ...(options.instant === undefined ? {} : { instant: options.instant }),
      ...(options.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
      ...(options.failures === undefined ? {} : { failures: options.failures }),
      ...(options.reconnectMaxMs === undefined ? {} : { reconnectMaxMs: options.reconnectMaxMs }),
      ...(options.onExecution === undefined ? {} : { onExecution: options.onExecution }),
      ...(options.log === undefined ? {} : { log: options.log }),
      ...(options.warm ? { warmModels: [warmModel] } : {}),
      ...options.macDefaults,
      ...options.perMac?.(i),
    });
    macs.push(mac);
  }
  for (const mac of macs) mac.start();
  return {
    macs,
    ready: async () => {
      await Promise.all(macs.map((m) => m.ready()));
    },
    connectedBy: () => {
      const counts = new Map(addresses.map((a) => [a, 0]));
      for (const m of macs) if (m.state === "registered") counts.set(m.address, (counts.get(m.address) ?? 0) + 1);
      return counts;
    },
    stop: async () => {
      await Promise.all(macs.map((m) => m.stop()));
    },
  };
}

/** Upper bound of `--reconnect-max-ms`: beyond ten minutes a Mac is as good as gone. */
export const MAX_RECONNECT_CAP_MS = 600_000;

export const fleetUsage = `Usage: coordinator fleet [options]

Runs simulated Apple-Silicon providers that connect to a coordinator over gRPC.

Options:
  --coordinator H:P[,H:P]  coordinator gRPC address, or several: Mac i starts at address i mod n and moves to
                           the next one whenever its stream breaks (default 127.0.0.1:50051)
  --count N                number of simulated Macs (default 4)
  --models A,B             models to serve (default gpt-oss-20b,gemma-4-26b)
  --time-scale X           simulated seconds per real second, > 0 (default 1; 10 = ten times faster)
  --instant                no delays at all (loads, prefill, decode); for gateway benchmarks
  --token T                provider token (default: $PROVIDER_TOKEN)
  --seed S                 integer seed for chips, serials and outputs (default 0)
  --version V              provider binary version, semver (default 0.7.0)
  --chips K1,K2            chip pool, e.g. m4-max-128,m3-ultra-256 (default: every Mac with >= 48 GB)
  --no-warm                do not preload a model on each Mac at start
  --reconnect-max-ms MS    cap of the jittered exponential reconnect backoff (default 10000)
  --exec-log FILE          append one JSON line per inference a Mac ran (serial, requestId, start/end ms, outcome)
  -h, --help               show this help
`;

/** Where the CLI writes and which signals it listens to (injectable for tests). */
export interface FleetCliIo {
  stdout(line: string): void;
  stderr(line: string): void;
  signals: Pick<NodeJS.EventEmitter, "once" | "removeListener">;
}

const defaultIo: FleetCliIo = {
  stdout: (l) => process.stdout.write(l.endsWith("\n") ? l : `${l}\n`),
  stderr: (l) => process.stderr.write(l.endsWith("\n") ? l : `${l}\n`),
  signals: process,
};

/**
 * `coordinator fleet ...`: starts a fleet, logs one line per registered Mac, and stops cleanly on SIGINT or
 * SIGTERM. Resolves to the exit code (0 after a clean stop or --help, 1 when the coordinator refuses the
 * token, 2 on invalid arguments).
 */
export async function runFleetCli(argv: string[], env: NodeJS.ProcessEnv, io: FleetCliIo = defaultIo): Promise<number> {
  const parsed = parseFleetArgs(argv, env);
  if (parsed.kind === "help") {
    io.stdout(fleetUsage);
    return 0;
  }
  if (parsed.kind === "error") {
    io.stderr(`coordinator fleet: ${parsed.message}\n\n${fleetUsage}`);
    return 2;
  }
  const { execLog: execLogPath, ...options } = parsed.options;
  const execLog = execLogPath === undefined ? undefined : createWriteStream(execLogPath, { flags: "a" });
  // A bad path surfaces as an 'error' event; report it once instead of crashing the fleet.
  execLog?.on("error", (e) => io.stderr(`coordinator fleet: --exec-log: ${e.message}`));
  const closeLog = () => new Promise<void>((resolve) => (execLog ? execLog.end(resolve) : resolve()));
  let fleet: Fleet;
  try {
    fleet = await startFleet({
      ...options,
      ...(execLog ? { onExecution: (e) => execLog.write(`${JSON.stringify(e)}\n`) } : {}),
      log: (line) => {
        if (line.includes("registered as") || line.includes("auth refused")) io.stdout(line);
      },
    });
  } catch (e) {
    io.stderr(`coordinator fleet: ${e instanceof Error ? e.message : String(e)}`);
    await closeLog();
    return 2;
  }
  const o = parsed.options;
  io.stdout(
    `fleet: ${o.count} Macs → ${o.coordinators.join(",")}, models ${o.models.join(",")}, ${o.instant ? "instant" : `time scale ${o.timeScale}`}`,
  );
  return new Promise<number>((resolve) => {
    let done = false;
    // The Macs' timers are unref'd (systemClock); while the coordinator is unreachable nothing else would
    // keep the process alive between reconnect attempts, so hold the event loop open until a signal.
    const keepAlive = setInterval(() => {}, 1 << 30);
    const finish = (code: number) => {
      if (done) return;
      done = true;
      clearInterval(keepAlive);
      io.signals.removeListener("SIGINT", onSignal);
      io.signals.removeListener("SIGTERM", onSignal);
      void fleet
        .stop()
        .then(closeLog)
        .then(() => resolve(code));
    };
    const onSignal = () => {
      io.stdout("fleet: stopping");
      finish(0);
    };
    io.signals.once("SIGINT", onSignal);
    io.signals.once("SIGTERM", onSignal);
    fleet.ready().then(
      () => io.stdout(`fleet: all ${o.count} Macs registered`),
      (e: unknown) => {
        if (done) return;
        io.stderr(`coordinator fleet: ${e instanceof Error ? e.message : String(e)}`);
        finish(1);
      },
    );
  });
}

type ParsedArgs =
  | { kind: "help" }
  | { kind: "error"; message: string }
  | {
      kind: "run";
      options: FleetOptions & { coordinators: string[]; timeScale: number; count: number; execLog?: string };
    };

/** Parses and validates the `fleet` flags. Pure. */
export function parseFleetArgs(argv: string[], env: NodeJS.ProcessEnv): ParsedArgs {
  // biome-ignore lint/suspicious/noImplicitAnyLet: typed by the assignment in the try (TypeScript's evolving let)
  let v;
  try {
    v = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        coordinator: { type: "string", default: "127.0.0.1:50051" },
        count: { type: "string", default: "4" },
        models: { type: "string", default: "gpt-oss-20b,gemma-4-26b" },
        "time-scale": { type: "string", default: "1" },
        instant: { type: "boolean", default: false },
        token: { type: "string" },
        seed: { type: "string", default: "0" },
        version: { type: "string", default: "0.7.0" },
        chips: { type: "string" },
        "no-warm": { type: "boolean", default: false },
        "reconnect-max-ms": { type: "string" },
        "exec-log": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (e) {
    return { kind: "error", message: e instanceof Error ? e.message : String(e) };
  }
  if (v.help) return { kind: "help" };
  const coordinators = v.coordinator.split(",").map((a) => a.trim());
  if (coordinators.some((a) => !/^[^:\s]+:\d{1,5}$/.test(a)))
    return { kind: "error", message: `--coordinator must be HOST:PORT[,HOST:PORT...], got "${v.coordinator}"` };
  let reconnectMaxMs: number | undefined;
  if (v["reconnect-max-ms"] !== undefined) {
    reconnectMaxMs = Number(v["reconnect-max-ms"]);
    if (!Number.isInteger(reconnectMaxMs) || reconnectMaxMs < 1 || reconnectMaxMs > MAX_RECONNECT_CAP_MS)
      return {
        kind: "error",
        message: `--reconnect-max-ms must be an integer from 1 to ${MAX_RECONNECT_CAP_MS}, got "${v["reconnect-max-ms"]}"`,
      };
  }
  const count = Number(v.count);
  if (!Number.isInteger(count) || count < 1 || count > 10_000)
    return { kind: "error", message: `--count must be an integer from 1 to 10000, got "${v.count}"` };
  const timeScale = Number(v["time-scale"]);
  if (!(timeScale > 0))
    return { kind: "error", message: `--time-scale must be a number > 0, got "${v["time-scale"]}"` };
  const seed = Number(v.seed);
  if (!Number.isInteger(seed)) return { kind: "error", message: `--seed must be an integer, got "${v.seed}"` };
  if (!/^\d+\.\d+\.\d+([-+].*)?$/.test(v.version))
    return { kind: "error", message: `--version must be a semver like 0.7.0, got "${v.version}"` };
  const models = v.models
    .split(",")
    .map((m) => m.trim())
    .filter((m) => m !== "");
  if (models.length === 0) return { kind: "error", message: "--models must name at least one model" };
  const token = v.token ?? env.PROVIDER_TOKEN;
  if (!token) return { kind: "error", message: "a provider token is required: --token T or PROVIDER_TOKEN" };
  let chips: ChipProfile[] | undefined;
  if (v.chips !== undefined) {
    chips = [];
    for (const key of v.chips
      .split(",")
      .map((k) => k.trim())
      .filter((k) => k !== "")) {
      const c = chipProfile(key);
      if (!c) return { kind: "error", message: `unknown chip "${key}"` };
      chips.push(c);
    }
  }
  return {
    kind: "run",
    options: {
      coordinator: coordinators.length === 1 ? coordinators[0]! : coordinators,
      coordinators,
      token,
      count,
      models,
      timeScale,
      instant: v.instant,
      seed,
      version: v.version,
      warm: !v["no-warm"],
      ...(chips ? { chips } : {}),
      ...(reconnectMaxMs === undefined ? {} : { reconnectMaxMs }),
      ...(v["exec-log"] === undefined ? {} : { execLog: v["exec-log"] }),
    },
  };
}
