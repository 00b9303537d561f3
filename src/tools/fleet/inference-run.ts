/**
 * Carries out one admitted inference request on a simulated Mac: prefill delay, role delta, paced decoding
 * with coalesced chunks, the scripted failure behaviour, and the final InferenceComplete with exact usage.
 * The Mac owns admission and the model slot; this file owns the timing and the frames of one request.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type DeltaSchema,
  ErrorReason,
  FinishReason,
  type ProviderMessageSchema,
} from "../../../gen/coordinator/provider/v1/provider_pb.js";
import type { Clock } from "../../util/clock.js";
import type { FailureBehaviour } from "./failure-script.js";
import { concurrentDecodeTps } from "./mac-performance.js";
import { toolArgumentFragments, wordStream, type SimTool } from "./sim-request.js";

type DeltaInit = NonNullable<MessageInitShape<typeof DeltaSchema>["delta"]>;
type ProviderMessageInit = MessageInitShape<typeof ProviderMessageSchema>;

/** What the Mac lends a run. */
export interface RunHost {
  clock: Clock;
  /** Simulated ms per real ms; Infinity with `instant`. */
  timeScale: number;
  instant: boolean;
  /** Real ms of output gathered into one chunk. */
  coalesceMs: number;
  /** Number of requests decoding on this Mac right now (shared, mutated by runs; a running prefill counts too). */
  decoding: { count: number };
  /** The Mac's prefill queue (MLX prefills one request at a time). Absent = prefills run in parallel. */
  prefill?: PrefillGate;
  /** Writes a frame, honouring backpressure; false when the stream is gone. */
  send(msg: ProviderMessageInit, options?: { flush?: boolean }): Promise<boolean>;
  /** Breaks the gRPC stream abruptly (the Mac reconnects). */
  dropConnection(): void;
  /**
   * Accounts `tokens` more of this request's KV before they are emitted; a promise means the KV budget is
   * full and the request is paused until it resolves (never failed). Absent = unlimited.
   */
  growKv?: (tokens: number) => Promise<void> | undefined;
}

/**
 * One prefill at a time per Mac, first come first served: MLX runs a single prefill, so a newcomer's first
 * token waits for every prompt ahead of it. While a prefill runs it counts as one more stream in the
 * concurrency law ({@link RunHost.decoding}), so the Mac's decoding streams slow down meanwhile.
 */
export class PrefillGate {
  #busy = false;
  readonly #waiters: (() => void)[] = [];

  /** Resolves with a release function when it is the caller's turn. */
  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = () => {
        this.#busy = true;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.#busy = false;
          this.#waiters.shift()?.();
        });
      };
      if (this.#busy) this.#waiters.push(grant);
      else grant();
    });
  }

  /** Requests waiting for their turn (not counting the one prefilling). */
  get waiting(): number {
    return this.#waiters.length;
  }
}

/** One in-flight request; `abort()` wakes every sleep so the run stops at its next step. */
export class Run {
  aborted = false;
  readonly #wakers = new Set<() => void>();

  constructor(
    readonly requestId: string,
    readonly clock: Clock,
  ) {}

  abort(): void {
    this.aborted = true;
    for (const w of [...this.#wakers]) w();
  }

  /** Sleeps `realMs` (a macrotask turn when ≤ 0), or until aborted. */
  sleep(realMs: number): Promise<void> {
    if (this.aborted) return Promise.resolve();
    if (!(realMs > 0) || !Number.isFinite(realMs)) return new Promise((r) => setImmediate(r));
    return new Promise((resolve) => {
      const wake = () => {
        cancel();
        this.#wakers.delete(wake);
        resolve();
      };
      const cancel = this.clock.setTimeout(wake, realMs);
      this.#wakers.add(wake);
    });
  }

  /** Waits until aborted (a stall). */
  stall(): Promise<void> {
    return this.aborted ? Promise.resolve() : new Promise((resolve) => this.#wakers.add(resolve));
  }
}

/** Everything a run needs to know about its request. */
export interface RunPlan {
  model: string;
  promptTokens: number;
  /** Output cap; reaching it finishes with LENGTH. */
  maxTokens: number;
  /** Natural answer length; reaching it first finishes with STOP. */
  naturalTokens: number;
  seed: number;
  decodeTps: number;
  prefillTps: number;
  behaviour: FailureBehaviour;
  tools: SimTool[];
  stop: string[];
  /** Emit gpt-oss-style reasoning deltas before the answer. */
  reasoning: boolean;
}

/** How a run ended. `decodeTps` is the measured simulated rate (tokens per simulated second). */
export type RunOutcome =
  | {
      kind: "completed";
      finishReason: FinishReason;
      completionTokens: number;
      reasoningTokens: number;
      decodeTps: number | undefined;
    }
  | { kind: "failed"; statusCode: number; reason: ErrorReason }
  | { kind: "aborted" }
  | { kind: "disconnected" };

/** Runs one request to its end. Never throws for protocol reasons. */
export async function runInference(host: RunHost, run: Run, plan: RunPlan): Promise<RunOutcome> {
  const id = run.requestId;
  const b = plan.behaviour;
  const chunk = (deltas: DeltaInit[]): ProviderMessageInit => ({
    msg: { case: "inferenceChunk", value: { requestId: id, deltas: deltas.map((delta) => ({ delta })) } },
  });
  const fail = async (statusCode: number, reason: ErrorReason, message: string): Promise<RunOutcome> => {
    if (!run.aborted)
      await host.send({ msg: { case: "inferenceError", value: { requestId: id, statusCode, reason, message } } });
    return run.aborted ? { kind: "aborted" } : { kind: "failed", statusCode, reason };
  };

  // Prefill: compute-bound, proportional to the prompt, one at a time on the Mac.
  const prefillMs = scaledMs(host, (plan.promptTokens / plan.prefillTps) * 1000);
  if (host.prefill && !host.instant) {
    const turn = host.prefill.acquire();
    await Promise.race([turn, run.stall()]);
    if (run.aborted) {
      // Keep the queue moving: give the turn back as soon as it comes.
      void turn.then((release) => release());
      return { kind: "aborted" };
    }
    const release = await turn;
    host.decoding.count++;
    try {
      await run.sleep(prefillMs);
    } finally {
      host.decoding.count--;
      release();
    }
  } else {
    await run.sleep(prefillMs);
  }
  if (run.aborted) return { kind: "aborted" };

  const sendRole = !(b.kind === "error_before_content" && b.afterRole === false);
  const flush = b.kind === "disconnect_before_content";
  if (sendRole && !(await host.send(chunk([{ case: "role", value: "assistant" }]), { flush })))
    return { kind: "disconnected" };
  if (run.aborted) return { kind: "aborted" };

  switch (b.kind) {
    case "error_before_content":
      return fail(b.statusCode ?? 500, b.reason ?? ErrorReason.INTERNAL, b.message ?? "injected error before content");
    case "disconnect_before_content":
      host.dropConnection();
      return { kind: "disconnected" };
    case "role_then_stall":
      await run.stall();
      return { kind: "aborted" };
    case "slow_first_token":
      await run.sleep(b.delayMs);
      if (run.aborted) return { kind: "aborted" };
      break;
    default:
      break;
  }

  const tokens = tokenSource(plan);
  let total = Math.min(tokens.length, plan.maxTokens);
  if (b.kind === "error_after_content" || b.kind === "stall_after_content") total = Math.min(total, b.afterTokens ?? 5);

  let emitted = 0;
  let reasoningTokens = 0;
  let stopped = false;
  let contentText = "";
  let acc = 0;
  const startMs = host.clock.nowMs();
  let lastMs = startMs;
  host.decoding.count++;
  try {
    while (emitted < total && !stopped) {
      let batch: number;
      if (host.instant) {
        batch = Math.min(64, total - emitted);
        await run.sleep(0);
      } else {
        const rate = concurrentDecodeTps(plan.decodeTps, host.decoding.count);
        await run.sleep(Math.max(host.coalesceMs, 1000 / (rate * host.timeScale)));
        const now = host.clock.nowMs();
        acc += ((now - lastMs) * host.timeScale * rate) / 1000;
        lastMs = now;
        batch = Math.min(Math.floor(acc), total - emitted);
        acc -= batch;
      }
      if (run.aborted) return { kind: "aborted" };
      const paused = batch > 0 ? host.growKv?.(batch) : undefined;
      if (paused) {
        // Paused for KV: wait (or abort), then restart the pacing clock so the pause is not paid back as a burst.
        await Promise.race([paused, run.stall()]);
        if (run.aborted) return { kind: "aborted" };
        lastMs = host.clock.nowMs();
        acc = 0;
      }
      const deltas: DeltaInit[] = [];
      for (let i = 0; i < batch; i++) {
        const d = tokens.at(emitted);
        if (d.case === "content") {
          if (plan.stop.some((s) => s !== "" && (contentText + d.value).includes(s))) {
            stopped = true;
            break;
          }
          contentText += d.value;
        } else if (d.case === "reasoning") reasoningTokens++;
        deltas.push(d);
        emitted++;
      }
      if (deltas.length > 0 && !(await host.send(chunk(deltas)))) return { kind: "disconnected" };
      if (run.aborted) return { kind: "aborted" };
    }
  } finally {
    host.decoding.count--;
  }

  if (b.kind === "error_after_content") {
    return fail(b.statusCode ?? 500, b.reason ?? ErrorReason.INTERNAL, b.message ?? "injected error after content");
  }
  if (b.kind === "stall_after_content") {
    await run.stall();
    return { kind: "aborted" };
  }
  const finishReason = stopped
    ? FinishReason.STOP
    : emitted >= plan.maxTokens && tokens.length > plan.maxTokens
      ? FinishReason.LENGTH
      : tokens.isToolCall
        ? FinishReason.TOOL_CALLS
        : FinishReason.STOP;
  const simElapsedMs = (host.clock.nowMs() - startMs) * host.timeScale;
  const decodeTps = host.instant || simElapsedMs <= 0 || emitted === 0 ? undefined : emitted / (simElapsedMs / 1000);
  const sent = await host.send({
    msg: {
      case: "inferenceComplete",
      value: {
        requestId: id,
        finishReason,
        usage: { promptTokens: plan.promptTokens, completionTokens: emitted, reasoningTokens },
      },
    },
  });
  if (!sent) return { kind: "disconnected" };
  return { kind: "completed", finishReason, completionTokens: emitted, reasoningTokens, decodeTps };
}

/** Real ms for `simMs` simulated ms. */
export function scaledMs(host: { timeScale: number; instant: boolean }, simMs: number): number {
  return host.instant ? 0 : simMs / host.timeScale;
}

interface TokenSource {
  length: number;
  isToolCall: boolean;
  /** Token `i` (called with increasing i). */
  at(i: number): Exclude<DeltaInit, { case: undefined; value?: undefined } | undefined>;
}

/** The request's deterministic token sequence: reasoning then content, or one tool call. */
function tokenSource(plan: RunPlan): TokenSource {
  const tool = plan.tools[0];
  if (plan.behaviour.kind === "tool_call" && tool) {
    const fragments = toolArgumentFragments(tool, plan.seed);
    const callId = `call_${plan.seed.toString(16).padStart(8, "0")}`;
    return {
      length: fragments.length + 1,
      isToolCall: true,
      at: (i) =>
        i === 0
          ? { case: "toolCall", value: { index: 0, id: callId, name: tool.name, arguments: "" } }
          : { case: "toolCall", value: { index: 0, arguments: fragments[i - 1]! } },
    };
  }
  const reasoning = plan.reasoning ? Math.min(40, Math.max(4, Math.floor(plan.naturalTokens / 3))) : 0;
  const thoughts = wordStream(plan.seed ^ 0x7f4a7c15);
  const words = wordStream(plan.seed);
  return {
    length: reasoning + plan.naturalTokens,
    isToolCall: false,
    at: (i) => (i < reasoning ? { case: "reasoning", value: thoughts() } : { case: "content", value: words() }),
  };
}
