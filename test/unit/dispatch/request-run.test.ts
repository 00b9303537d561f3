/**
 * The dispatcher's state machine under a fake clock, with hand-written fake provider channels: every
 * deadline and failover rule without sockets or real time.
 */
import assert from "node:assert/strict";
import { Dispatcher } from "../../../src/dispatch/dispatcher.js";
import type { InferenceDispatch, ProviderChannel } from "../../../src/dispatch/provider-channel.js";
import type { DispatchHealth, DispatchJob, DispatchResult, DispatchSink } from "../../../src/dispatch/types.js";
import { classifyProviderError } from "../../../src/health/classify-provider-error.js";
import type { Delta, ProviderEvent } from "../../../src/inference/types.js";
import { ProviderRegistry } from "../../../src/registry/provider-registry.js";
import type { PickResult, RouteRequest } from "../../../src/scheduler/types.js";
import { FakeClock } from "../../../src/util/clock.js";

class FakeChannel implements ProviderChannel {
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

class RecordingSink implements DispatchSink {
  committedTo: string | undefined;
  readonly received: Delta[] = [];
  finished = false;
  error: string | undefined;
  commit(p: string) {
    assert.equal(this.committedTo, undefined, "commit happens once");
    this.committedTo = p;
  }
  deltas(ds: readonly Delta[]) {
    this.received.push(...ds);
  }
  finish() {
    this.finished = true;
  }
  failAfterCommit(e: Error) {
    this.error = e.message;
  }
}

const noHealth: DispatchHealth = {
  isCooledDown: () => false,
  isLoadCooledDown: () => false,
  recordOutcome: () => undefined,
  recordLoadRefusal: () => undefined,
};

interface Harness {
  clock: FakeClock;
  channels: Map<string, FakeChannel>;
  picks: RouteRequest[];
  run(job?: Partial<DispatchJob>): { sink: RecordingSink; result: Promise<DispatchResult>; abort: AbortController };
}

/** Providers are picked in the order given, skipping excluded ones. */
function harness(providerIds: string[], options: Record<string, number> = {}, versions: Record<string, string> = {}): Harness {
  const clock = new FakeClock();
  const registry = new ProviderRegistry();
  const channels = new Map<string, FakeChannel>();
  const ids: string[] = [];
  for (const name of providerIds) {
    const rec = registry.add(
      {
        serial: name,
        accountId: `acct-${name}`,
        version: versions[name] ?? "0.7.0",
        hardware: { chipName: "M4", chipFamily: "M4", memoryGb: 64, memoryBandwidthGbs: 500, gpuCores: 40 },
        decodeTps: 60,
        prefillTps: 1000,
        maxModelSlots: 1,
        models: [{ id: "m", sizeBytes: 1, quantization: "q4", contextLength: 8192, isVision: false, templateRenderOk: undefined }],
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
    return id ? { kind: "picked", providerId: id, reason: "warm", cold: false, reservedTokens: 100, costMs: 1 } : { kind: "reject", code: "model_unavailable", message: "none" };
  };
  const dispatcher = new Dispatcher({
    registry,
    directory: { channel: (id) => byId.get(id) },
    clock,
    health: noHealth,
    classify: classifyProviderError,
    pick,
    options: { firstTokenBaseMs: 1_000, firstTokenPerPromptTokenMs: 0, speculativeFraction: 0, ...options },
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
        traits: { maxTokens: 100, estimatedPromptTokens: 10, hasTools: false, requiresVision: false, stream: true },
        shape: "base",
        ...job,
      };
      return { sink, result: dispatcher.dispatch(full, sink, abort.signal), abort };
    },
  };
}

const flush = () => new Promise((r) => setImmediate(r));
const complete: ProviderEvent = { kind: "complete", finishReason: "stop", usage: { promptTokens: 10, completionTokens: 3, reasoningTokens: 0 } };

describe("RequestRun (fake clock)", () => {
  it("holds a role delta, commits on the first content and replays the role once", async () => {
    const h = harness(["a"]);
    const { sink, result } = h.run();
    await flush();
    const a = h.channels.get("a")!;
    a.emit({ kind: "chunk", deltas: [{ kind: "role", role: "assistant" }] });
    assert.equal(sink.committedTo, undefined, "a role delta does not commit");
    a.emit({ kind: "chunk", deltas: [{ kind: "content", text: "hi" }] });
    assert.equal(sink.committedTo, a.providerId);
    assert.deepEqual(sink.received.map((d) => d.kind), ["role", "content"]);
    a.emit(complete);
    const r = await result;
    assert.equal(r.kind, "completed");
  });

  it("fails over when no content arrives by the first-token deadline", async () => {
    const h = harness(["a", "b"]);
    const { sink, result } = h.run();
    await flush();
    h.clock.advance(999);
    assert.equal(h.channels.get("b")!.sent.length, 0);
    h.clock.advance(2);
    await flush();
    assert.deepEqual(h.channels.get("a")!.cancels, ["r1"], "the silent provider is cancelled");
    const b = h.channels.get("b")!;
    assert.equal(b.sent.length, 1);
    b.emit({ kind: "chunk", deltas: [{ kind: "content", text: "x" }] });
    b.emit(complete);
    assert.equal((await result).kind, "completed");
    assert.equal(sink.committedTo, b.providerId);
  });

  it("extends the wait to the inference timeout after InferenceAccepted (model loading)", async () => {
    const h = harness(["a", "b"], { inferenceTimeoutMs: 60_000 });
    const { result } = h.run();
    await flush();
    h.channels.get("a")!.emit({ kind: "accepted" });
    h.clock.advance(59_000);
    await flush();
    assert.equal(h.channels.get("b")!.sent.length, 0, "still waiting for the loading provider");
    h.channels.get("a")!.emit({ kind: "chunk", deltas: [{ kind: "content", text: "x" }] });
    h.channels.get("a")!.emit(complete);
    assert.equal((await result).kind, "completed");
  });

  it("gives a preamble-only provider the preamble budget past the deadline, then fails over", async () => {
    const h = harness(["a", "b"], { preambleContentTimeoutMs: 5_000 });
    const { result } = h.run();
    await flush();
    h.clock.advance(500);
    h.channels.get("a")!.emit({ kind: "chunk", deltas: [{ kind: "role", role: "assistant" }] });
    h.clock.advance(5_000 - 1); // 500 + 4,999: still within preamble + budget
    await flush();
    assert.equal(h.channels.get("b")!.sent.length, 0);
    h.clock.advance(2);
    await flush();
    assert.equal(h.channels.get("b")!.sent.length, 1);
    h.channels.get("b")!.emit(complete);
    assert.equal((await result).kind, "completed");
  });

  it("stops at once on a deterministic error (context overflow)", async () => {
    const h = harness(["a", "b"]);
    const { result } = h.run();
    await flush();
    h.channels.get("a")!.emit({ kind: "error", statusCode: 400, message: "prompt exceeds the context", reason: "context_overflow" });
    const r = await result;
    assert.equal(r.kind, "failed");
    assert.equal(r.kind === "failed" && r.error.code, "invalid_request");
    assert.equal(h.channels.get("b")!.sent.length, 0, "no retry elsewhere");
  });

  it("prefers a different binary version after a 5xx", async () => {
    const h = harness(["a", "b"], {}, { a: "0.6.5", b: "0.7.0" });
    const { result } = h.run();
    await flush();
    h.channels.get("a")!.emit({ kind: "error", statusCode: 500, message: "boom", reason: "internal" });
    await flush();
    assert.equal(h.picks.at(-1)!.avoidVersion, "0.6.5");
    h.channels.get("b")!.emit(complete);
    assert.equal((await result).kind, "completed");
  });

  it("caps retries after capacity-shaped errors and answers 429", async () => {
    const h = harness(["a", "b", "c", "d", "e"], { maxCapacityRetries: 1 });
    const { result } = h.run();
    await flush();
    for (const n of ["a", "b"]) {
      h.channels.get(n)!.emit({ kind: "error", statusCode: 503, message: "no KV budget", reason: "capacity" });
      await flush();
    }
    const r = await result;
    assert.equal(r.kind, "failed");
    assert.equal(r.kind === "failed" && r.error.code, "capacity_exhausted");
    assert.equal(h.channels.get("c")!.sent.length, 0);
  });

  it("ends a committed stream with an in-band error when the provider stalls past the idle timeout", async () => {
    const h = harness(["a"], { idleTimeoutMs: 3_000 });
    const { sink, result } = h.run();
    await flush();
    h.channels.get("a")!.emit({ kind: "chunk", deltas: [{ kind: "content", text: "partial" }] });
    h.clock.advance(3_001);
    const r = await result;
    assert.equal(r.kind, "failed");
    assert.equal(r.kind === "failed" && r.committed, true);
    assert.match(sink.error ?? "", /stalled/);
    assert.deepEqual(h.channels.get("a")!.cancels, ["r1"]);
  });

  it("never races a backup for a request pinned to the caller's own machines", async () => {
    const h = harness(["a", "b"], { speculativeFraction: 0.5 });
    const { result } = h.run({ pinnedAccountId: "acct-a" });
    await flush();
    h.clock.advance(600);
    await flush();
    assert.equal(h.channels.get("b")!.sent.length, 0);
    h.channels.get("a")!.emit(complete);
    assert.equal((await result).kind, "completed");
  });

  it("cancels the provider when the consumer aborts before content, and settles nothing", async () => {
    const h = harness(["a"]);
    const { result, abort } = h.run();
    await flush();
    abort.abort();
    const r = await result;
    assert.deepEqual(r, { kind: "cancelled", committed: false, attempts: 1 });
    assert.deepEqual(h.channels.get("a")!.cancels, ["r1"]);
  });
});
