import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CapacitySampler, parseCapacity } from "../../../../src/tools/loadtest/capacity-sampler.js";
import { FakeClock } from "../../../../src/util/clock.js";

/** A capacity endpoint answering with the scripted statuses in turn (then 200). */
async function startCapacity(
  statuses: number[],
): Promise<{ baseUrl: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server: Server = createServer((_req, res) => {
    const status = statuses[hits++] ?? 200;
    res.writeHead(status, { "content-type": "application/json" });
    res.end(
      status === 200
        ? JSON.stringify({ models: [{ id: "m", warm_providers: hits, cold_providers: 3, note: "x" }] })
        : "{}",
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    hits: () => hits,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(cond(), "condition not reached");
}

describe("loadtest CapacitySampler", () => {
  it("samples at start and then on every interval of the injected clock", async () => {
    const srv = await startCapacity([]);
    const clock = new FakeClock();
    const s = new CapacitySampler({ baseUrl: srv.baseUrl, apiKey: "k", intervalMs: 3_000, clock });
    try {
      s.start();
      await until(() => s.samples.length === 1);
      clock.advance(2_999);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(srv.hits(), 1);
      clock.advance(1);
      await until(() => s.samples.length === 2);
      assert.deepEqual(s.samples[1], {
        kind: "ok",
        index: 1,
        atMs: clock.nowMs(),
        models: [{ id: "m", warm_providers: 2, cold_providers: 3 }],
      });
      assert.deepEqual(s.snapshotFor("m"), {
        sampleIndex: 1,
        snapshot: "ok",
        modelRow: { id: "m", warm_providers: 2, cold_providers: 3 },
      });
      assert.deepEqual(s.snapshotFor("absent"), { sampleIndex: 1, snapshot: "ok", modelRow: null });
      // An error that ended before the second poll is paired with the first, whenever it is paired.
      assert.equal(s.snapshotFor("m", clock.nowMs() - 1).sampleIndex, 0);
      assert.equal(s.snapshotFor("m", clock.nowMs()).sampleIndex, 1);
      assert.deepEqual(s.snapshotFor("m", s.samples[0]!.atMs - 1), {
        sampleIndex: null,
        snapshot: "none",
        modelRow: null,
      });
    } finally {
      await s.stop();
      await srv.close();
    }
  });

  it("records a 404 as unavailable and stops polling", async () => {
    const srv = await startCapacity([404]);
    const clock = new FakeClock();
    const s = new CapacitySampler({ baseUrl: srv.baseUrl, apiKey: null, intervalMs: 1_000, clock });
    try {
      assert.deepEqual(s.snapshotFor("m"), { sampleIndex: null, snapshot: "none", modelRow: null });
      s.start();
      await until(() => s.samples.length === 1);
      clock.advance(10_000);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(srv.hits(), 1);
      assert.equal(s.available, false);
      assert.deepEqual(s.snapshotFor("m"), { sampleIndex: 0, snapshot: "unavailable", modelRow: null });
    } finally {
      await s.stop();
      await srv.close();
    }
  });

  it("keeps polling after a failed poll and pairs errors with the last good snapshot", async () => {
    const srv = await startCapacity([200, 500]);
    const s = new CapacitySampler({ baseUrl: srv.baseUrl, apiKey: null, intervalMs: 1_000, clock: new FakeClock() });
    try {
      await s.sampleOnce();
      const failed = await s.sampleOnce();
      assert.deepEqual({ ...failed, atMs: 0 }, { kind: "error", index: 1, atMs: 0, message: "HTTP 500" });
      assert.equal(s.available, true);
      assert.equal(s.snapshotFor("m").sampleIndex, 0);
    } finally {
      await srv.close();
    }
  });

  it("parses rows keeping only numeric fields and rejects a body without models", () => {
    assert.deepEqual(parseCapacity('{"models":[{"id":"a","warm_providers":2,"x":"y"},{"nope":1}]}'), [
      { id: "a", warm_providers: 2 },
    ]);
    assert.throws(() => parseCapacity('{"ok":true}'), /no models array/);
  });
});
