import assert from "node:assert/strict";
import { estimateCost, prefillBacklogMs } from "../../../src/scheduler/cost.js";
import { pick } from "../../../src/scheduler/pick.js";
import { resolveSchedulerOptions } from "../../../src/scheduler/scheduler-options.js";
import { catalog, fixedEstimator, healthy, inflight, provider, request, slot, view } from "./fixtures.js";

const o = resolveSchedulerOptions();

describe("cost: prefill backlog (a Mac prefills one request at a time)", () => {
  // Two identical warm Macs, each running one request with the same output backlog; on "queued" that request
  // has not streamed a token yet (still waiting for its 8,000-token prefill), on "streaming" it has.
  const running = (over: Parameters<typeof inflight>[2]) => ({
    slots: [slot("gemma", { state: "running", numRunning: 1 })],
    inflight: [inflight("r1", "gemma", { reservedTokens: 9000, remainingOutputTokens: 1000, ...over })],
  });
  const queued = provider("queued", running({ promptTokens: 8000, usedTokens: 8000 }));
  const streaming = provider("streaming", running({ promptTokens: 8000, usedTokens: 8001 }));

  it("counts the prompts of requests that have not streamed a token yet, at the slot's prefill rate", () => {
    assert.equal(prefillBacklogMs(queued, o), (8000 / 400) * 1000);
    assert.equal(prefillBacklogMs(streaming, o), 0);
    // Unknown prompt size (an older dispatcher) counts nothing rather than guessing.
    assert.equal(prefillBacklogMs(provider("x", running({ usedTokens: 8000 })), o), 0);
  });

  it("counts prefills of every model on the Mac, not only the requested one", () => {
    const p = provider("two", {
      maxModelSlots: 2,
      slots: [slot("gemma"), slot("oss", { observedPrefillTps: 800 })],
      inflight: [inflight("r1", "oss", { promptTokens: 4000, usedTokens: 4000 })],
    });
    assert.equal(prefillBacklogMs(p, o), (4000 / 800) * 1000);
  });

  it("adds the backlog to the newcomer's expected first token", () => {
    const args = ["gemma", queued.slots[0], 1, 1000, 800, 16e9, o] as const;
    const withBacklog = estimateCost(queued, ...args);
    const without = estimateCost(streaming, "gemma", streaming.slots[0], 1, 1000, 800, 16e9, o);
    assert.equal(Math.round(withBacklog.ttftMs - without.ttftMs), 20_000);
    assert.equal(Math.round(withBacklog.costMs - without.costMs), 20_000);
  });

  it("routes a newcomer away from a Mac whose prefill queue is long", () => {
    const r = pick(view(queued, streaming), request("gemma"), {
      nowMs: 0,
      random: () => 0,
      health: healthy(),
      estimator: fixedEstimator(800),
      catalog,
      options: o,
    });
    assert.equal(r.kind === "picked" && r.providerId, "streaming");
    // Same snapshot with the first request streaming on both: a near-tie, broken by the random source.
    const both = pick(
      view(streaming, provider("streaming2", running({ promptTokens: 8000, usedTokens: 8001 }))),
      request("gemma"),
      {
        nowMs: 0,
        random: () => 0.99,
        health: healthy(),
        estimator: fixedEstimator(800),
        catalog,
        options: o,
      },
    );
    assert.equal(both.kind === "picked" && both.providerId, "streaming2");
  });
});

describe("cost: a Mac's streams share its memory bandwidth, whatever model they decode", () => {
  const ctx = (random = 0) => ({
    nowMs: 0,
    random: () => random,
    health: healthy(),
    estimator: fixedEstimator(800),
    catalog,
    options: o,
  });
  // A two-slot Mac decoding one gemma stream, its oss slot idle: the newcomer shares the Mac with that stream.
  const shared = (observedDecodeTps: number) =>
    provider("shared", {
      maxModelSlots: 2,
      slots: [slot("gemma", { state: "running", numRunning: 1 }), slot("oss", { state: "idle", observedDecodeTps })],
      inflight: [inflight("g1", "gemma", { promptTokens: 500, usedTokens: 900 })],
    });
  const alone = provider("alone", { slots: [slot("oss", { state: "idle", observedDecodeTps: 45 })] });

  it("decodes the newcomer at rate(2) beside another model's stream, and charges the slowdown it causes", () => {
    const k = o.concurrencyLawK;
    const c = estimateCost(shared(45), "oss", shared(45).slots[1], 0, 0, 800, 12e9, o);
    const own = (800 / (45 / (1 + k))) * 1000;
    // One other stream runs at rate(2) instead of rate(1) while the newcomer decodes: own·(1 − 1/(1 + k)) later.
    const slows = (own * k) / (1 + k);
    assert.equal(Math.round(c.costMs), Math.round(own + slows));
    // The same slot on a Mac with nothing else running: rate(1), nothing slowed.
    const solo = estimateCost(alone, "oss", alone.slots[0], 0, 0, 800, 12e9, o);
    assert.equal(Math.round(solo.costMs), Math.round((800 / 45) * 1000));
  });

  it("charges the same slowdown for a stream of the requested model, and counts other models' streams for a cold load", () => {
    const k = o.concurrencyLawK;
    // One oss stream already on the slot (no backlog left to count), nothing else on the Mac.
    const stacked = provider("stacked", {
      slots: [slot("oss", { state: "running", numRunning: 1 })],
      inflight: [inflight("o1", "oss", { promptTokens: 500, usedTokens: 900, remainingOutputTokens: 0 })],
    });
    const own = (800 / (45 / (1 + k))) * 1000;
    const c = estimateCost(stacked, "oss", stacked.slots[0], 1, 0, 800, 12e9, o);
    assert.equal(Math.round(c.costMs), Math.round(own + (own * k) / (1 + k)));
    // A cold oss load on the two-slot Mac decoding gemma: the load, then rate(2) beside the gemma stream.
    const cold = estimateCost(shared(45), "oss", undefined, 0, 0, 800, 12e9, o);
    const warm = estimateCost(shared(45), "oss", shared(45).slots[1], 0, 0, 800, 12e9, o);
    assert.ok(cold.costMs > warm.costMs, "the load comes on top");
    assert.equal(Math.round(cold.costMs - cold.ttftMs), Math.round(warm.costMs - warm.ttftMs));
  });

  it("prefers an idle Mac over a faster one already decoding another model, until the faster one is much faster", () => {
    // 55 tok/s alone would beat 45 tok/s if the gemma stream were ignored; beside it the newcomer gets 43 and
    // slows the gemma stream for as long.
    const r = pick(view(shared(55), alone), request("oss"), ctx());
    assert.equal(r.kind === "picked" && r.providerId, "alone");
    // Twice as fast is worth sharing: 90 / 1.27 = 71 tok/s, and the slowdown caused does not undo it.
    const fast = pick(view(shared(90), alone), request("oss"), ctx());
    assert.equal(fast.kind === "picked" && fast.providerId, "shared");
  });
});
