import assert from "node:assert/strict";
import type { MacSpec, ModelPerf } from "../../../../src/tools/simulate/scenario.js";
import { concurrentDecodeTps as concurrentRate } from "../../../../src/tools/fleet/mac-performance.js";
import {
  ADMIT_HEADROOM_TOKENS,
  SimProvider,
  type ModelFacts,
  type SimJob,
} from "../../../../src/tools/simulate/sim-provider.js";

const GIB = 1024 ** 3;
const spec = (over: Partial<MacSpec> = {}): MacSpec => ({
  chipName: "Apple M2 Max",
  chipFamily: "M2",
  memoryGb: 64,
  memoryBandwidthGbs: 400,
  version: "0.7.1",
  maxModelSlots: 2,
  reportsFreeForLoad: true,
  models: ["a", "b"],
  ...over,
});
// solo decode 40 tok/s, prefill 400 tok/s (1,000 prompt tokens = 2.5 s of prefill); loads take 1 s.
const perf = new Map<string, ModelPerf>(
  ["a", "b"].map((id) => [id, { id, decodeTpsPerGbs: 0.1, prefillToDecode: 10, loadGbPerS: 1e9, loadBaseMs: 1000 }]),
);
const facts = (kvBytesPerToken = 100_000) =>
  new Map<string, ModelFacts>(
    ["a", "b"].map((id) => [id, { sizeBytes: 10 * GIB, kvBytesPerToken, contextLength: 131_072, isVision: false }]),
  );
const job = (id: string, promptTokens: number, outputTokens: number): SimJob => ({
  requestId: id,
  promptTokens,
  outputTokens,
  prefillLeftMs: 0,
  generated: 0,
  firstTokenAtMs: undefined,
});

const TICK = 100;
/** A Mac with the given models loaded (time advanced past the load). */
function warmMac(models: string[], f = facts(), over: Partial<MacSpec> = {}): { mac: SimProvider; now: number } {
  const mac = new SimProvider("m", spec(over), perf, f, 16);
  for (const m of models) assert.equal(mac.load(m, 0), true);
  let now = 0;
  while (models.some((m) => !mac.isLoaded(m))) mac.tick((now += TICK), TICK, 3_600_000);
  return { mac, now };
}
/** Ticks until every job completed (or a bound); returns completion times by id. */
function runAll(
  mac: SimProvider,
  from: number,
  ids: string[],
  maxMs = 600_000,
): { done: Map<string, number>; now: number } {
  const done = new Map<string, number>();
  let now = from;
  while (done.size < ids.length && now - from < maxMs) {
    for (const j of mac.tick((now += TICK), TICK, 3_600_000).completed) done.set(j.requestId, now);
  }
  return { done, now };
}

describe("SimProvider: serial prefill per Mac", () => {
  it("a newcomer's first token waits for the prefill ahead of it", () => {
    const { mac, now } = warmMac(["a"]);
    const first = job("1", 1000, 10);
    const second = job("2", 1000, 10);
    mac.submit("a", first, now);
    mac.submit("a", second, now);
    assert.equal(mac.prefillQueueLength(), 2);
    runAll(mac, now, ["1", "2"]);
    // 2.5 s each, one after the other.
    assert.ok(
      first.firstTokenAtMs! - now >= 2500 && first.firstTokenAtMs! - now < 2500 + 2 * TICK,
      `first ${first.firstTokenAtMs! - now}`,
    );
    assert.ok(second.firstTokenAtMs! - now >= 5000, `second ${second.firstTokenAtMs! - now}`);
  });

  it("shares the prefill queue across the Mac's models", () => {
    const { mac, now } = warmMac(["a", "b"]);
    const onA = job("a1", 2000, 10);
    const onB = job("b1", 400, 10);
    mac.submit("a", onA, now);
    mac.submit("b", onB, now);
    runAll(mac, now, ["a1", "b1"]);
    // b's short prompt (1 s) still waits for a's 5 s prefill.
    assert.ok(onB.firstTokenAtMs! - now >= 6000, `b first token ${onB.firstTokenAtMs! - now}`);
  });

  it("slows the Mac's decoding streams while a prefill runs (one more stream in the concurrency law)", () => {
    const { mac, now: t0 } = warmMac(["a"]);
    const streaming = job("s", 10, 100_000);
    mac.submit("a", streaming, t0);
    let now = t0;
    while (streaming.generated === 0) mac.tick((now += TICK), TICK, 3_600_000);
    const before = streaming.generated;
    mac.tick((now += TICK), TICK, 3_600_000);
    const alone = streaming.generated - before;
    mac.submit("a", job("p", 100_000, 10), now);
    const mid = streaming.generated;
    mac.tick((now += TICK), TICK, 3_600_000);
    const duringPrefill = streaming.generated - mid;
    assert.ok(Math.abs(alone - (concurrentRate(40, 1) * TICK) / 1000) < 1e-9, `alone ${alone}`);
    assert.ok(
      Math.abs(duringPrefill - (concurrentRate(40, 2) * TICK) / 1000) < 1e-9,
      `during prefill ${duringPrefill}`,
    );
  });
});

describe("SimProvider: KV budget like the provider simulator", () => {
  // 64 GB: budget = (64 × 0.9 − 10 − 4) GiB ÷ 10 MB/token ≈ 4,680 tokens: small enough to overflow.
  const tight = facts(10_000_000);

  it("admits on prompt + headroom and queues the rest on the provider (numWaiting)", () => {
    const { mac, now } = warmMac(["a"], tight);
    const budget = mac.heartbeatSlots()[0]!.tokenBudgetMax;
    assert.ok(budget > 4000 && budget < 5000, `budget ${budget}`);
    mac.submit("a", job("1", 3000, 10), now);
    mac.submit("a", job("2", budget - 3000 - ADMIT_HEADROOM_TOKENS + 1, 10), now);
    const hb = mac.heartbeatSlots()[0]!;
    assert.equal(hb.numRunning, 1);
    assert.equal(hb.numWaiting, 1);
  });

  it("pauses a request whose growth overflows the budget, reports it waiting, and resumes it when KV frees; none is killed", () => {
    const { mac, now } = warmMac(["a"], tight);
    const budget = mac.heartbeatSlots()[0]!.tokenBudgetMax;
    // Both fit at admission; together they cannot both finish growing.
    const short = job("short", 1500, 1000);
    const long = job("long", 1500, budget - 1500 - 1500 - 200);
    mac.submit("a", short, now);
    mac.submit("a", long, now);
    let t = now;
    let pausedTicks = 0;
    const done = new Set<string>();
    while (done.size < 2 && t - now < 600_000) {
      const before = long.generated;
      for (const j of mac.tick((t += TICK), TICK, 3_600_000).completed) done.add(j.requestId);
      const hb = mac.heartbeatSlots()[0]!;
      // Only the oldest may overshoot the budget (by its own growth), when everyone else is paused.
      assert.ok(hb.tokenBudgetUsed <= budget + short.outputTokens, `used ${hb.tokenBudgetUsed}`);
      if (long.paused) {
        pausedTicks++;
        assert.equal(long.generated, before, "a paused request makes no progress");
        assert.equal(hb.numWaiting, 1, "paused requests are reported as waiting");
      }
    }
    assert.ok(pausedTicks > 0, "the younger request paused");
    assert.equal(long.paused, false);
    assert.deepEqual([...done].sort(), ["long", "short"]);
    assert.equal(long.generated, long.outputTokens);
  });

  it("lets the oldest request keep going when every decoding request would pause (no deadlock)", () => {
    const { mac, now } = warmMac(["a"], tight);
    const budget = mac.heartbeatSlots()[0]!.tokenBudgetMax;
    const a = job("a", 2000, 3000);
    const b = job("b", 2000, 3000);
    mac.submit("a", a, now);
    mac.submit("a", b, now);
    const { done } = runAll(mac, now, ["a", "b"]);
    assert.equal(done.size, 2);
    assert.ok(done.get("a")! < done.get("b")!, "the oldest finishes first");
    assert.ok(budget < 2000 + 2000 + 3000 + 3000);
  });
});

describe("SimProvider: running vs loaded", () => {
  it("counts a Mac as running a model only while a request of it is admitted", () => {
    const { mac, now } = warmMac(["a"]);
    assert.equal(mac.isLoaded("a"), true);
    assert.equal(mac.isRunning("a"), false);
    mac.submit("a", job("1", 100, 5), now);
    assert.equal(mac.isRunning("a"), true);
    assert.equal(mac.heartbeatSlots()[0]!.state, "running");
    runAll(mac, now, ["1"]);
    assert.equal(mac.isRunning("a"), false);
    assert.equal(mac.isLoaded("a"), true);
    assert.equal(mac.heartbeatSlots()[0]!.state, "idle");
  });
});
