import assert from "node:assert/strict";
import { CapacityQueue } from "../../../src/dispatch/capacity-queue.js";
import { CancelSource } from "../../../src/dispatch/cancel-signal.js";
import { CoordinatorError } from "../../../src/errors/coordinator-error.js";
import { FakeClock } from "../../../src/util/clock.js";

/** Settles to "started" or the CoordinatorError's code, without unhandled rejections. */
function outcome(p: Promise<void>): { value: string | undefined; error: CoordinatorError | undefined } {
  const o: { value: string | undefined; error: CoordinatorError | undefined } = { value: undefined, error: undefined };
  p.then(
    () => (o.value = "started"),
    (e: CoordinatorError) => {
      o.error = e;
      o.value = e.code;
    },
  );
  return o;
}

const tick = () => new Promise((r) => setImmediate(r));

describe("CapacityQueue", () => {
  let clock: FakeClock;
  let q: CapacityQueue;
  beforeEach(() => {
    clock = new FakeClock();
    q = new CapacityQueue({ clock, limit: 2, waitMs: 10_000 });
  });

  it("starts waiters oldest first when capacity appears, and only as many as fit", async () => {
    let slots = 0;
    const started: string[] = [];
    const tryStart = (id: string) => () => {
      if (slots === 0) return false;
      slots--;
      started.push(id);
      return true;
    };
    const a = outcome(q.wait("m", "a", tryStart("a"), new CancelSource()));
    const b = outcome(q.wait("m", "b", tryStart("b"), new CancelSource()));
    slots = 1;
    q.wake("m");
    await tick();
    assert.deepEqual(started, ["a"]);
    assert.equal(a.value, "started");
    assert.equal(b.value, undefined);
    assert.equal(q.depth("m"), 1);
  });

  it("answers 429 with Retry-After when the queue is full or the wait runs out", async () => {
    const never = () => false;
    const a = outcome(q.wait("m", "a", never, new CancelSource()));
    outcome(q.wait("m", "b", never, new CancelSource()));
    const c = outcome(q.wait("m", "c", never, new CancelSource()));
    await tick();
    assert.equal(c.value, "capacity_exhausted");
    assert.ok((c.error?.retryAfterS ?? 0) >= 1);
    clock.advance(10_000);
    await tick();
    assert.equal(a.value, "capacity_exhausted");
    assert.equal(q.depth("m"), 0);
  });

  it("leaves the queue when the client goes away", async () => {
    const cancel = new CancelSource();
    const a = outcome(q.wait("m", "a", () => false, cancel));
    cancel.abort();
    await tick();
    assert.equal(a.value, "canceled");
    assert.equal(q.depth("m"), 0);
  });

  it("on close, rejects every waiter and every later wait with a retryable 503 at once", async () => {
    const never = () => false;
    const a = outcome(q.wait("m", "a", never, new CancelSource()));
    const b = outcome(q.wait("other", "b", never, new CancelSource()));
    q.close(new CoordinatorError("unavailable", "shutting down", { retryAfterS: 1 }));
    const c = outcome(q.wait("m", "c", never, new CancelSource()));
    await tick();
    for (const o of [a, b, c]) {
      assert.equal(o.value, "unavailable");
      assert.equal(o.error?.status, 503);
    }
    assert.equal(q.depth("m") + q.depth("other"), 0);
  });
});
