/**
 * The inference side of a simulated Mac: takes an InferenceRequest through the checks, a cold load if needed,
 * KV admission and the run itself (inference-run.ts), and keeps what tests and benchmarks read afterwards
 * (requests received, trace contexts, one {@link RunRecord} per finished request). It owns the Mac's
 * in-flight runs, its decode counter and its serial prefill queue; the Mac owns the stream and the loads.
 */
import { ErrorReason, type InferenceRequest } from "../../../gen/coordinator/provider/v1/provider_pb.js";
import type { Clock } from "../../util/clock.js";
import type { ChipProfile } from "./chip-profiles.js";
import { checkInferenceRequest } from "./check-inference-request.js";
import { chooseBehaviour } from "./choose-behaviour.js";
import type { ScriptedBehaviour } from "./failure-script.js";
import { PrefillGate, Run, runInference, type RunHost } from "./inference-run.js";
import type { MacStream } from "./mac-connection.js";
import type { LoadResult } from "./mac-model-loader.js";
import { decodeTps, prefillTps, type SimModelSpec } from "./mac-performance.js";
import type { ModelSlots, Slot } from "./model-slots.js";
import { hashSeed, naturalLength, type SimChatRequest } from "./sim-request.js";
import type { RunRecord, SimModelOption, SimulatedMacOptions } from "./simulated-mac-options.js";

/** What the engine needs from its Mac. Arrays and maps are the Mac's own, shared by reference. */
export interface InferenceEngineHost {
  options: SimulatedMacOptions;
  version: string;
  chip: ChipProfile;
  clock: Clock;
  timeScale: number;
  instant: boolean;
  onDisk: ReadonlyMap<string, SimModelSpec>;
  modelOptions: ReadonlyMap<string, SimModelOption>;
  slots: ModelSlots;
  script: ScriptedBehaviour[];
  random: () => number;
  /** The stream open now (a request's frames go only to the stream it arrived on). */
  currentStream(): MacStream | undefined;
  beginLoad(model: string, beforeStart: () => void): LoadResult;
  dropConnection(): void;
  /** Called with each record of a request that ran (not one refused before running). */
  onRecord(record: RunRecord): void;
  /** The Mac's serial and the coordinator address of its current stream, for the execution log. */
  serial: string;
  address(): string;
}

/** How one request ended, for the execution log. */
type Ended = { outcome: RunRecord["outcome"]; completionTokens: number };

/** The in-flight requests of one Mac. */
export class InferenceEngine {
  /** Request ids of every InferenceRequest received, in order. */
  readonly requestsReceived: string[] = [];
  /** The W3C trace context (`traceparent`, ...) of every InferenceRequest received, by request id. */
  readonly traceContextsReceived = new Map<string, Record<string, string>>();
  /** Finished requests (completed, failed, rejected, aborted or cut by a disconnect). */
  readonly records: RunRecord[] = [];
  readonly #h: InferenceEngineHost;
  readonly #runs = new Map<string, Run>();
  readonly #decoding = { count: 0 };
  readonly #prefill = new PrefillGate();

  constructor(host: InferenceEngineHost) {
    this.#h = host;
  }

  /** Requests in flight. */
  get active(): number {
    return this.#runs.size;
  }

  /** Requests decoding (or prefilling) right now. */
  get decoding(): number {
    return this.#decoding.count;
  }

  /** Stops one request at once; it sends nothing more. */
  cancel(requestId: string): void {
    this.#runs.get(requestId)?.abort();
  }

  /** Stops every request (the stream is gone or the Mac stops). */
  abortAll(): void {
    for (const run of this.#runs.values()) run.abort();
  }

  /** Serves one request to its end; never throws for protocol reasons. */
  async serve(req: InferenceRequest): Promise<void> {
    const h = this.#h;
    const log = h.options.onExecution;
    if (!log) {
      await this.#serve(req);
      return;
    }
    const startMs = h.clock.nowMs();
    const coordinator = h.address();
    // An unexpected throw still ends the run on the Mac; log it as aborted so the log misses no request.
    let ended: Ended = { outcome: "aborted", completionTokens: 0 };
    try {
      ended = await this.#serve(req);
    } finally {
      log({
        serial: h.serial,
        requestId: req.requestId,
        coordinator,
        attemptSpanId: spanIdOf(req.traceContext.traceparent),
        startMs,
        endMs: h.clock.nowMs(),
        ...ended,
      });
    }
  }

  async #serve(req: InferenceRequest): Promise<Ended> {
    const h = this.#h;
    const id = req.requestId;
    this.requestsReceived.push(id);
    this.traceContextsReceived.set(id, { ...req.traceContext });
    const stream = h.currentStream();
    const reject = (statusCode: number, reason: ErrorReason, message: string): Ended => {
      void stream?.send({ msg: { case: "inferenceError", value: { requestId: id, statusCode, reason, message } } });
      this.records.push({
        requestId: id,
        model: req.model,
        behaviour: "normal",
        outcome: "rejected",
        promptTokens: 0,
        completionTokens: 0,
        decodeTps: undefined,
      });
      return { outcome: "rejected", completionTokens: 0 };
    };
    const check = checkInferenceRequest(req, h.onDisk);
    if (check.kind === "rejected") return reject(check.statusCode, check.reason, check.message);
    const { body, promptTokens, maxTokens } = check;
    const run = new Run(id, h.clock);

    // Cold model: accept, load, then admit.
    const load = h.beginLoad(
      req.model,
      () => void stream?.send({ msg: { case: "inferenceAccepted", value: { requestId: id } } }),
    );
    if (load.kind === "refused") return reject(503, load.reason, load.message);
    const slot = load.slot;
    this.#runs.set(id, run);
    try {
      if (load.kind === "pending") {
        slot.waiting++;
        const ok = await slot.whenReady;
        slot.waiting--;
        if (run.aborted) return { outcome: "aborted", completionTokens: 0 };
        if (!ok) return reject(503, ErrorReason.MODEL_LOAD_FAILED, `loading ${req.model} was abandoned`);
      }
      // Continuous batching: only the prompt's KV is needed to start; output KV grows as it is generated.
      const admit = h.slots.admit(slot, promptTokens, h.clock.nowMs());
      if (admit.kind === "rejected") return reject(503, ErrorReason.CAPACITY, admit.message);
      const lease = admit.lease;
      try {
        return await this.#generate(req, run, slot, {
          promptTokens,
          maxTokens,
          body,
          stream,
          growKv: (n) => h.slots.grow(slot, lease, n),
        });
      } finally {
        h.slots.release(slot, lease, h.clock.nowMs());
      }
    } finally {
      this.#runs.delete(id);
    }
  }

  async #generate(
    req: InferenceRequest,
    run: Run,
    slot: Slot,
    ctx: {
      promptTokens: number;
      maxTokens: number;
      body: SimChatRequest;
      stream: MacStream | undefined;
      growKv: (tokens: number) => Promise<void> | undefined;
    },
  ): Promise<Ended> {
    const h = this.#h;
    const o = h.options;
    const { body, stream } = ctx;
    const behaviour = chooseBehaviour({
      model: req.model,
      version: h.version,
      body,
      requiresVision: req.traits?.requiresVision === true,
      modelIsVision: slot.spec.isVision,
      templateRenderOk: h.modelOptions.get(req.model)?.templateRenderOk,
      failures: o.failures,
      script: h.script,
      random: h.random,
    });
    const seed = hashSeed(req.model, req.bodyJson);
    const range = o.naturalTokens ?? { min: 20, max: 200 };
    const host: RunHost = {
      clock: h.clock,
      timeScale: h.timeScale,
      instant: h.instant,
      coalesceMs: o.coalesceMs ?? 5,
      decoding: this.#decoding,
      prefill: this.#prefill,
      growKv: ctx.growKv,
      send: (msg, options) =>
        h.currentStream() === stream && stream ? stream.send(msg, options) : Promise.resolve(false),
      dropConnection: () => {
        if (h.currentStream() === stream) h.dropConnection();
      },
    };
    const outcome = await runInference(host, run, {
      model: req.model,
      promptTokens: ctx.promptTokens,
      maxTokens: ctx.maxTokens,
      naturalTokens: naturalLength(seed, range.min, range.max),
      seed,
      decodeTps: decodeTps(h.chip, slot.spec),
      prefillTps: prefillTps(h.chip, slot.spec),
      behaviour,
      tools: body.tools,
      stop: body.stop,
      reasoning: o.reasoning === true && req.model.startsWith("gpt-oss"),
    });
    let decodeRate: number | undefined;
    if (outcome.kind === "completed" && outcome.decodeTps !== undefined) {
      decodeRate = outcome.decodeTps;
      slot.observedDecodeTps = 0.7 * slot.observedDecodeTps + 0.3 * outcome.decodeTps;
    }
    const record: RunRecord = {
      requestId: req.requestId,
      model: req.model,
      behaviour: behaviour.kind,
      outcome: outcome.kind,
      promptTokens: ctx.promptTokens,
      completionTokens: outcome.kind === "completed" ? outcome.completionTokens : 0,
      decodeTps: decodeRate,
    };
    this.records.push(record);
    h.onRecord(record);
    return { outcome: record.outcome, completionTokens: record.completionTokens };
  }
}

/** The parent span id of a W3C `traceparent` (version-traceid-spanid-flags): the attempt's span. */
function spanIdOf(traceparent: string | undefined): string | undefined {
  const parts = traceparent?.split("-");
  return parts?.length === 4 ? parts[2] : undefined;
}
