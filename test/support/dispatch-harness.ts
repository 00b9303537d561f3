/**
 * A Dispatcher under a fake clock, with hand-written fake provider channels, a recording sink and, optionally, a
 * recording logger: the dispatcher's unit tests drive every provider event and deadline by hand.
 */
import assert from "node:assert/strict";
import { Dispatcher } from "../../src/dispatch/dispatcher.js";
import type { InferenceDispatch, ProviderChannel } from "../../src/dispatch/provider-channel.js";
import type { DispatchHealth, DispatchJob, DispatchResult, DispatchSink } from "../../src/dispatch/types.js";
import { classifyProviderError } from "../../src/health/classify-provider-error.js";
import type { Delta, ProviderEvent, RequestTraits } from "../../src/inference/types.js";
import { ProviderRegistry } from "../../src/registry/provider-registry.js";
import type { PickResult, RouteRequest } from "../../src/scheduler/types.js";
import { FakeClock } from "../../src/util/clock.js";
import type { Logger, LogLevel } from "../../src/util/logger.js";

export class FakeChannel implements ProviderChannel {
  readonly sent: InferenceDispatch[] = [];
  readonly cancels: string[] = [];
  handler: ((e: ProviderEvent) => void) | undefined;
  constructor(readonly providerId: string) {}
  dispatch(req: InferenceDispatch, onEvent: (e: ProviderEvent) => void): boolean {
    this.sent.push(req);
    this.handler = onEvent;
    return true;
  }
  cancel(requestId: string): void {
    this.cancels.push(requestId);
    this.handler = undefined;
  }
  loadModel(): void {}
  emit(e: ProviderEvent): void {
    this.handler?.(e);
  }
}

export class RecordingSink implements DispatchSink {
  committedTo: string | undefined;
  readonly received: Delta[] = [];
  finished = false;
  error: string | undefined;
  commit(p: string) {
    assert.equal(this.committedTo, undefined, "commit happens once");
    this.committedTo = p;
  }
  deltas(ds: readonly Delta[]) {
    assert.ok(this.committedTo !== undefined, "no output before commit");
    this.received.push(...ds);
  }
  finish() {
    this.finished = true;
  }
  failAfterCommit(e: Error) {
    this.error = e.message;
  }
}

export interface LogLine {
  level: LogLevel;
  msg: string;
  fields: Record<string, unknown>;
}

/** A Logger that keeps every line. */
export class RecordingLogger implements Logger {
  readonly lines: LogLine[] = [];
  readonly debug = this.#at("debug");
  readonly info = this.#at("info");
  readonly warn = this.#at("warn");
  readonly error = this.#at("error");
  #at(level: LogLevel) {
    return (msg: string, fields: Record<string, unknown> = {}) => void this.lines.push({ level, msg, fields });
  }
}

const noHealth: DispatchHealth = {
  isCooledDown: () => false,
  isLoadCooledDown: () => false,
  recordOutcome: () => undefined,
  recordLoadRefusal: () => undefined,
};

export const streamingTraits: RequestTraits = {
  maxTokens: 100,
  estimatedPromptTokens: 10,
  hasTools: false,
  requiresVision: false,
  stream: true,
};
export const bufferedTraits: RequestTraits = { ...streamingTraits, stream: false };

export interface Harness {
  clock: FakeClock;
  channels: Map<string, FakeChannel>;
  picks: RouteRequest[];
  run(job?: Partial<DispatchJob>): { sink: RecordingSink; result: Promise<DispatchResult>; abort: AbortController };
}

export interface HarnessOptions {
  /** Dispatch options (defaults: first-token deadline 1,000 ms flat, no speculative backup). */
  options?: Record<string, number>;
  /** Provider binary versions by name (default 0.7.0). */
  versions?: Record<string, string>;
  log?: Logger;
}

/** Providers are picked in the order given, skipping excluded ones. Jobs stream unless `traits` say otherwise. */
export function harness(providerIds: string[], o: HarnessOptions = {}): Harness {
  const clock = new FakeClock();
  const registry = new ProviderRegistry();
  const channels = new Map<string, FakeChannel>();
  const ids: string[] = [];
  for (const name of providerIds) {
    const rec = registry.add(
      {
        serial: name,
        accountId: `acct-${name}`,
        version: o.versions?.[name] ?? "0.7.0",
        hardware: { chipName: "M4", chipFamily: "M4", memoryGb: 64, memoryBandwidthGbs: 500, gpuCores: 40 },
        decodeTps: 60,
        prefillTps: 1000,
        maxModelSlots: 1,
        models: [
          {
            id: "m",
            sizeBytes: 1,
            quantization: "q4",
            contextLength: 8192,
            isVision: false,
            templateRenderOk: undefined,
          },
        ],
      },
      0,
    );
    ids.push(rec.id);
    channels.set(name, new FakeChannel(rec.id));
  }
  const byId = new Map([...channels.values()].map((c) => [c.providerId, c]));
  const picks: RouteRequest[] = [];
  const pick = (req: RouteRequest): PickResult => {
    picks.push(req);
    const id = ids.find((i) => !req.exclude.has(i));
    return id
      ? { kind: "picked", providerId: id, reason: "warm", cold: false, reservedTokens: 100, costMs: 1 }
      : { kind: "reject", code: "model_unavailable", message: "none" };
  };
  const dispatcher = new Dispatcher({
    registry,
    directory: { channel: (id) => byId.get(id) },
    clock,
    health: noHealth,
    classify: classifyProviderError,
    pick,
    options: { firstTokenBaseMs: 1_000, firstTokenPerPromptTokenMs: 0, speculativeFraction: 0, ...o.options },
    ...(o.log ? { log: o.log } : {}),
  });
  return {
    clock,
    channels,
    picks,
    run(job = {}) {
      const sink = new RecordingSink();
      const abort = new AbortController();
      const full: DispatchJob = {
        requestId: "r1",
        model: "m",
        bodyJson: new Uint8Array(),
        traits: streamingTraits,
        shape: "base",
        ...job,
      };
      return { sink, result: dispatcher.dispatch(full, sink, abort.signal), abort };
    },
  };
}

/** Lets queued microtasks and immediates run (the dispatcher launches attempts asynchronously). */
export const flush = () => new Promise((r) => setImmediate(r));

export const complete: ProviderEvent = {
  kind: "complete",
  finishReason: "stop",
  usage: { promptTokens: 10, completionTokens: 3, reasoningTokens: 0 },
};
