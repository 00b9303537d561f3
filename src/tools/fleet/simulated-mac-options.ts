/**
 * Options and records of a {@link SimulatedMac}, kept apart from the class so the fleet and tests can
 * import the types without the gRPC machinery, and how the options' model list becomes the Mac's disk.
 */
import { defaultCatalog, type CatalogEntry } from "../../models/catalog.js";
import type { Clock } from "../../util/clock.js";
import type { ChipProfile } from "./chip-profiles.js";
import type { FailureBehaviour, FailureOptions } from "./failure-script.js";
import type { RunOutcome } from "./inference-run.js";
import { simModelSpec, type SimModelSpec } from "./mac-performance.js";

/** A model on the Mac's disk, with per-build overrides. */
export interface SimModelOption {
  id: string;
  /** Overrides the catalog's vision flag for this build (e.g. `false`: a build without the vision tower). */
  isVision?: boolean;
  /** Sent as `template_render_ok`; `false` also makes every request for the model fail with 500 TEMPLATE. */
  templateRenderOk?: boolean;
  /** Sent as `quantization` (default "mxfp4" for gpt-oss, "4bit" otherwise). */
  quantization?: string;
}

/** Options of {@link SimulatedMac}. Durations are real milliseconds unless named "simulated". */
export interface SimulatedMacOptions {
  /** Coordinator gRPC address, "host:port": the one the Mac connects to first. */
  coordinator: string;
  /**
   * Every coordinator address, in rotation order (active-active coordinators). After a broken stream the Mac
   * reconnects to the address after the one it last used, so a dead coordinator's Macs spread over the others.
   * `coordinator` is where the rotation starts (put first when it is not in the list). Default: `[coordinator]`,
   * which keeps one channel for the Mac's whole life.
   */
  coordinators?: readonly string[];
  /**
   * Real ms a freshly opened stream may take to get its RegisterAck before the Mac gives up on it and moves on
   * (a coordinator that accepts TCP but never answers: SIGSTOP, a hung process). Default: no bound, as before.
   */
  registerTimeoutMs?: number;
  /** Called once for every InferenceRequest the Mac received, when the Mac is done with it (see ExecutionEntry). */
  onExecution?: (entry: ExecutionEntry) => void;
  /** Provider token sent as `auth_token`. */
  token: string;
  /** Stable hardware serial. */
  serial: string;
  chip: ChipProfile;
  /** The 32-byte Ed25519 seed of the machine's key (default: derived from the serial, see simulatedKeySeed). */
  keySeed?: Uint8Array;
  /** Hostile: answers key challenges with a wrong signature. */
  badSignatures?: boolean;
  /** Models on disk (ids or per-build options). */
  models: (string | SimModelOption)[];
  /** Provider binary version (default "0.7.0"). */
  version?: string;
  catalog?: readonly CatalogEntry[];
  /** Sent as `private_only`: serve only the token owner's account (default false). */
  privateOnly?: boolean;
  /** Models kept loaded at once (default 2). */
  maxModelSlots?: number;
  /** Concurrent requests per model (default 8). */
  maxConcurrency?: number;
  /** Simulated seconds per real second (default 1); `Infinity` = instant. */
  timeScale?: number;
  /** No delays at all: loads, prefill and decode are immediate (gateway benchmarks). */
  instant?: boolean;
  /** Heartbeat period, real ms; default: the RegisterAck's value, else 2000 ÷ timeScale (at least 200). */
  heartbeatIntervalMs?: number;
  /** SSD read rate for model loads, GB/s (default 3). */
  diskGbs?: number;
  /** Natural answer length range in tokens, chosen per request deterministically (default 20-200). */
  naturalTokens?: { min: number; max: number };
  /** Emit gpt-oss-style reasoning deltas for gpt-oss models (default false). */
  reasoning?: boolean;
  /** Output produced within this many real ms is sent as one chunk (default 5). */
  coalesceMs?: number;
  failures?: FailureOptions;
  /** Seed for probabilistic failures and reconnect jitter (default 0). */
  seed?: number;
  /** Models to load right after the first registration. */
  warmModels?: string[];
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  /** Reconnect backoff: first delay and cap, ms (defaults 250 and 10000). */
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  clock?: Clock;
  log?: (line: string) => void;
}

/**
 * One InferenceRequest as the Mac carried it out, from its arrival to the Mac's last frame for it. The coordinator
 * sends the same request id to every attempt, so two entries with one id and overlapping times mean the request
 * ran on two Macs at once.
 */
export interface ExecutionEntry {
  serial: string;
  requestId: string;
  /** The coordinator address of the stream the request arrived on. */
  coordinator: string;
  /** The attempt's span id from the request's `traceparent`, when the coordinator traced it. */
  attemptSpanId: string | undefined;
  /** Arrival and end, the Mac clock's ms (Unix ms with the real clock). */
  startMs: number;
  endMs: number;
  outcome: RunRecord["outcome"];
  completionTokens: number;
}

export type MacState = "idle" | "connecting" | "registered" | "backoff" | "stopped" | "unauthenticated";

/** What happened to one request, for tests and benchmarks. */
export interface RunRecord {
  requestId: string;
  model: string;
  behaviour: FailureBehaviour["kind"];
  outcome: RunOutcome["kind"] | "rejected";
  promptTokens: number;
  completionTokens: number;
  /** Measured simulated decode rate, tokens/s (undefined in instant mode or without output). */
  decodeTps: number | undefined;
}

/**
 * The Mac's models on disk from its options, by id, in the options' order: each model's spec from the catalog
 * with the build's vision override applied, and the build options themselves.
 */
export function simModelsOnDisk(o: Pick<SimulatedMacOptions, "models" | "catalog">): {
  specs: Map<string, SimModelSpec>;
  options: Map<string, SimModelOption>;
} {
  const specs = new Map<string, SimModelSpec>();
  const options = new Map<string, SimModelOption>();
  for (const m of o.models) {
    const opt = typeof m === "string" ? { id: m } : m;
    const spec = simModelSpec(opt.id, o.catalog ?? defaultCatalog);
    if (opt.isVision !== undefined) spec.isVision = opt.isVision;
    specs.set(opt.id, spec);
    options.set(opt.id, opt);
  }
  return { specs, options };
}
