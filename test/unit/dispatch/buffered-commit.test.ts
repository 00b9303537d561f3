/**
 * A buffered (non-streaming) response is committed only when its provider completes: a failure or stall after
 * content but before the answer is written fails over invisibly, like a failure before content, and the failed
 * attempt is never billed. Fake clock and fake provider channels (see test/support/dispatch-harness.ts).
 */
import assert from "node:assert/strict";
import type { DispatchResult } from "../../../src/dispatch/types.js";
import type { Delta } from "../../../src/inference/types.js";
import { bufferedTraits, complete, flush, harness } from "../../support/dispatch-harness.js";

const text = (ds: Delta[]) => ds.map((d) => (d.kind === "content" ? d.text : "")).join("");
const content = (t: string) => ({ kind: "chunk" as const, deltas: [{ kind: "content" as const, text: t }] });
const role = { kind: "chunk" as const, deltas: [{ kind: "role" as const, role: "assistant" }] };
const boom = { kind: "error" as const, statusCode: 500, message: "boom", reason: "internal" as const };

function assertNotBilled(r: DispatchResult): void {
  assert.ok(r.kind !== "completed");
  assert.equal(r.served, undefined, "no provider is credited");
  assert.equal(r.partial, undefined, "no usage is charged");
}

describe("buffered responses commit at completion", () => {
  it("writes nothing until the provider completes, then the whole answer at once", async () => {
    const h = harness(["a"]);
    const { sink, result } = h.run({ traits: bufferedTraits });
    await flush();
    const a = h.channels.get("a")!;
    a.emit(role);
    a.emit(content("hel"));
    a.emit(content("lo"));
    assert.equal(sink.committedTo, undefined, "content alone does not commit a buffered response");
    a.emit(complete);
    const r = await result;
    assert.equal(r.kind, "completed");
    assert.equal(sink.committedTo, a.providerId);
    assert.deepEqual(
      sink.received.map((d) => d.kind),
      ["role", "content", "content"],
    );
    assert.equal(text(sink.received), "hello");
    assert.ok(sink.finished);
  });

  it("fails over invisibly when the provider errors after content: only the next provider's answer is written", async () => {
    const h = harness(["a", "b"]);
    const { sink, result } = h.run({ traits: bufferedTraits });
    await flush();
    const [a, b] = [h.channels.get("a")!, h.channels.get("b")!];
    a.emit(role);
    a.emit(content("doomed "));
    a.emit(boom);
    await flush();
    assert.equal(sink.committedTo, undefined);
    assert.equal(b.sent.length, 1, "retried on the other provider");
    b.emit(role);
    b.emit(content("fine"));
    b.emit(complete);
    const r = await result;
    assert.equal(r.kind, "completed");
    assert.equal(r.kind === "completed" && r.providerId, b.providerId, "the provider that served is the one billed");
    assert.equal(sink.committedTo, b.providerId);
    assert.equal(text(sink.received), "fine", "the failed attempt's output is dropped");
    assert.equal(sink.received.filter((d) => d.kind === "role").length, 1, "exactly one role delta");
    assert.equal(sink.error, undefined, "no in-band error");
  });

  it("fails over when the provider stalls after content, and tells the stalled provider to stop", async () => {
    const h = harness(["a", "b"], { options: { idleTimeoutMs: 3_000 } });
    const { sink, result } = h.run({ traits: bufferedTraits });
    await flush();
    const [a, b] = [h.channels.get("a")!, h.channels.get("b")!];
    a.emit(content("partial"));
    h.clock.advance(2_999);
    await flush();
    assert.equal(b.sent.length, 0, "still within the idle timeout");
    h.clock.advance(2);
    await flush();
    assert.deepEqual(a.cancels, ["r1"]);
    assert.equal(b.sent.length, 1);
    b.emit(content("whole"));
    b.emit(complete);
    const r = await result;
    assert.equal(r.kind === "completed" && r.providerId, b.providerId);
    assert.equal(text(sink.received), "whole");
  });

  it("answers an error status and bills nothing when every provider fails after content", async () => {
    const h = harness(["a", "b", "c"], { options: { maxAttempts: 2 } });
    const { sink, result } = h.run({ traits: bufferedTraits });
    await flush();
    for (const n of ["a", "b"]) {
      h.channels.get(n)!.emit(content("some"));
      h.channels.get(n)!.emit(boom);
      await flush();
    }
    const r = await result;
    assert.equal(r.kind, "failed");
    assert.equal(r.kind === "failed" && r.committed, false);
    assert.equal(r.kind === "failed" && r.error.code, "provider_failed");
    assertNotBilled(r);
    assert.equal(sink.committedTo, undefined);
    assert.equal(h.channels.get("c")!.sent.length, 0, "bounded by maxAttempts");
  });

  it("races a backup: the first content leads and cancels the rival; a failed leader is replaced by an untried provider", async () => {
    const h = harness(["a", "b", "c"], { options: { speculativeFraction: 0.5 } });
    const { sink, result } = h.run({ traits: bufferedTraits });
    await flush();
    const [a, b, c] = [h.channels.get("a")!, h.channels.get("b")!, h.channels.get("c")!];
    h.clock.advance(500);
    await flush();
    assert.equal(b.sent.length, 1, "backup dispatched");
    b.emit(content("fast"));
    assert.deepEqual(a.cancels, ["r1"], "the slower rival is cancelled at the leader's first content");
    b.emit(boom);
    await flush();
    assert.equal(a.sent.length, 1, "the cancelled rival is not re-dispatched");
    assert.equal(c.sent.length, 1);
    c.emit(content("steady"));
    c.emit(complete);
    const r = await result;
    assert.equal(r.kind === "completed" && r.providerId, c.providerId);
    assert.equal(text(sink.received), "steady");
  });

  it("does not count a failed leader's generation time against the pre-content budget", async () => {
    const h = harness(["a", "b"], { options: { maxPreContentMs: 5_000, idleTimeoutMs: 3_000 } });
    const { result } = h.run({ traits: bufferedTraits });
    await flush();
    const [a, b] = [h.channels.get("a")!, h.channels.get("b")!];
    h.clock.advance(500);
    a.emit(content("x"));
    for (let i = 0; i < 5; i++) {
      h.clock.advance(1_000);
      a.emit(content("x"));
    }
    a.emit(boom); // 5,500 ms after the start, 500 ms of it before content
    await flush();
    assert.equal(b.sent.length, 1, "failed over");
    b.emit(content("y"));
    b.emit(complete);
    assert.equal((await result).kind, "completed");
  });

  it("bills a buffered consumer who hangs up for what its provider generated until then (the coordinator's count)", async () => {
    const h = harness(["a"]);
    const { sink, result, abort } = h.run({ traits: bufferedTraits });
    await flush();
    const a = h.channels.get("a")!;
    a.emit(content("x".repeat(40)));
    abort.abort();
    const r = await result;
    assert.equal(r.kind, "cancelled");
    assert.equal(r.kind === "cancelled" && r.committed, false, "nothing was written");
    assert.equal(r.kind === "cancelled" && r.served?.providerId, a.providerId);
    assert.equal(r.kind === "cancelled" && r.partial?.completionTokens, 10);
    assert.deepEqual(a.cancels, ["r1"]);
    assert.equal(sink.committedTo, undefined);
  });
});
