/**
 * The dispatcher's state machine under a fake clock, with hand-written fake provider channels: every
 * deadline and failover rule without sockets or real time.
 */
import assert from "node:assert/strict";
import { complete, flush, harness } from "../../support/dispatch-harness.js";

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
    assert.deepEqual(
      sink.received.map((d) => d.kind),
      ["role", "content"],
    );
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
    const h = harness(["a", "b"], { options: { inferenceTimeoutMs: 60_000 } });
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
    const h = harness(["a", "b"], { options: { preambleContentTimeoutMs: 5_000 } });
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
    h.channels
      .get("a")!
      .emit({ kind: "error", statusCode: 400, message: "prompt exceeds the context", reason: "context_overflow" });
    const r = await result;
    assert.equal(r.kind, "failed");
    assert.equal(r.kind === "failed" && r.error.code, "invalid_request");
    assert.equal(h.channels.get("b")!.sent.length, 0, "no retry elsewhere");
  });

  it("prefers a different binary version after a 5xx", async () => {
    const h = harness(["a", "b"], { versions: { a: "0.6.5", b: "0.7.0" } });
    const { result } = h.run();
    await flush();
    h.channels.get("a")!.emit({ kind: "error", statusCode: 500, message: "boom", reason: "internal" });
    await flush();
    assert.equal(h.picks.at(-1)!.avoidVersion, "0.6.5");
    h.channels.get("b")!.emit(complete);
    assert.equal((await result).kind, "completed");
  });

  it("caps retries after capacity-shaped errors and answers 429", async () => {
    const h = harness(["a", "b", "c", "d", "e"], { options: { maxCapacityRetries: 1 } });
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
    const h = harness(["a"], { options: { idleTimeoutMs: 3_000 } });
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
    const h = harness(["a", "b"], { options: { speculativeFraction: 0.5 } });
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
