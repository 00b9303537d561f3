import assert from "node:assert/strict";
import { timeout } from "../../../src/util/timeout.js";
import { FakeClock, systemClock } from "../../../src/util/clock.js";
import { busyFor, startPipeReply } from "../../support/pipe-reply.js";

const flush = () => new Promise<void>((r) => setImmediate(r));

describe("timeout()", () => {
  it('resolves "timeout" once the deadline passes with nothing settled, and the value when it settles first', async () => {
    const clock = new FakeClock();
    const late = timeout(clock, new Promise<never>(() => {}), 100);
    clock.advance(100);
    await flush();
    assert.equal(await late, "timeout");
    assert.equal(await timeout(clock, Promise.resolve(7), 100), 7);
    await assert.rejects(timeout(clock, Promise.reject(new Error("boom")), 100), /boom/);
  });

  it("a reply that arrived in time while the loop was busy past the deadline wins", async () => {
    const pipe = await startPipeReply();
    try {
      const waited = timeout(systemClock, pipe.reply("row"), 200);
      // At once, without a turn of the loop: the reply must not be read before the block.
      busyFor(400);
      assert.equal(await waited, "row");
    } finally {
      pipe.close();
    }
  });
});
