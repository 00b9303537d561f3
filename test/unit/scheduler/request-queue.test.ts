import assert from "node:assert/strict";
import { RequestQueue } from "../../../src/scheduler/request-queue.js";

describe("RequestQueue", () => {
  it("is FIFO per model and bounded", () => {
    const q = new RequestQueue<string>({ maxDepthPerModel: 2 });
    assert.deepEqual(q.enqueue("m", "a", "A", 0), { kind: "queued", position: 1 });
    assert.deepEqual(q.enqueue("m", "b", "B", 1), { kind: "queued", position: 2 });
    assert.equal(q.enqueue("m", "c", "C", 2).kind, "full");
    assert.equal(q.enqueue("other", "d", "D", 2).kind, "queued");
    assert.equal(q.shift("m", 3)?.item, "A");
    assert.equal(q.shift("m", 4)?.item, "B");
    assert.equal(q.shift("m", 5), undefined);
  });

  it("removes an entry from the middle", () => {
    const q = new RequestQueue<string>();
    for (const id of ["a", "b", "c"]) q.enqueue("m", id, id, 0);
    assert.equal(q.remove("b")?.id, "b");
    assert.equal(q.remove("b"), undefined);
    assert.deepEqual([q.shift("m", 1)?.id, q.shift("m", 1)?.id], ["a", "c"]);
  });

  it("expires entries that waited past the limit, oldest first", () => {
    const q = new RequestQueue<string>({ maxWaitMs: 120_000 });
    q.enqueue("m", "a", "a", 0);
    q.enqueue("m", "b", "b", 60_000);
    assert.deepEqual(q.expire(119_999), []);
    assert.deepEqual(
      q.expire(120_000).map((e) => e.id),
      ["a"],
    );
    assert.equal(q.depth("m"), 1);
    assert.deepEqual(
      q.expire(180_000).map((e) => e.id),
      ["b"],
    );
  });

  it("computes Retry-After from the measured drain rate and depth", () => {
    const q = new RequestQueue<string>();
    // One service event every 2 s.
    for (let t = 0; t <= 20_000; t += 2000) q.recordService("m", t);
    for (const id of ["a", "b", "c", "d"]) q.enqueue("m", id, id, 20_000);
    // (4 waiting + 1) × 2 s = 10 s.
    assert.equal(q.retryAfterMs("m", 20_000), 10_000);
  });

  it("lengthens Retry-After when the drain goes silent, and clamps it to [1 s, 60 s]", () => {
    const q = new RequestQueue<string>();
    for (let t = 0; t <= 1000; t += 100) q.recordService("fast", t);
    assert.equal(q.retryAfterMs("fast", 1000), 1000); // 0.1 s raw → clamped up
    for (let t = 0; t <= 20_000; t += 2000) q.recordService("m", t);
    assert.equal(q.retryAfterMs("m", 50_000), 30_000); // 30 s of silence → 1 per 30 s
    assert.equal(q.retryAfterMs("m", 500_000), 60_000);
  });

  it("uses the unmeasured default before any service event", () => {
    assert.equal(new RequestQueue<string>({ unmeasuredRetryAfterMs: 7000 }).retryAfterMs("m", 0), 7000);
  });
});
