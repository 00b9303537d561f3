import assert from "node:assert/strict";
import { chipProfile } from "../../../../src/tools/fleet/chip-profiles.js";
import type { SimModelSpec } from "../../../../src/tools/fleet/mac-performance.js";
import { ModelSlots, type KvLease, type Slot } from "../../../../src/tools/fleet/model-slots.js";

const GB = 1_000_000_000;
const M4_MAX = chipProfile("m4-max-128")!;
// 128 GB - 12.8 GB reserve - 10 GB weights = 105.2 GB of KV; at 105.2 MB/token the budget is 1,000 tokens.
const TINY: SimModelSpec = {
  id: "tiny-kv",
  sizeBytes: 10 * GB,
  kvBytesPerToken: 105_200_000,
  contextLength: 32_768,
  isVision: false,
  defaultMaxTokens: 4096,
  bytesReadFraction: 1,
};

function loadedSlots(maxConcurrency = 8): { slots: ModelSlots; slot: Slot } {
  const slots = new ModelSlots({
    chip: M4_MAX,
    onDisk: new Map([[TINY.id, TINY]]),
    maxModelSlots: 1,
    maxConcurrency,
    diskGbs: 5,
  });
  const d = slots.beginLoad(TINY.id, 0);
  assert.equal(d.kind, "start");
  slots.finishLoad(TINY.id);
  return { slots, slot: slots.get(TINY.id)! };
}

function admit(slots: ModelSlots, slot: Slot, prompt: number): KvLease {
  const d = slots.admit(slot, prompt, 0);
  assert.equal(d.kind, "admitted", d.kind === "rejected" ? d.message : "");
  return (d as { lease: KvLease }).lease;
}

function reported(slots: ModelSlots) {
  const s = slots.capacity().slots[0]!;
  return {
    used: Number(s.activeTokenBudgetUsed),
    max: Number(s.activeTokenBudgetMax),
    running: s.numRunning,
    waiting: s.numWaiting,
  };
}

describe("ModelSlots KV accounting (continuous batching)", () => {
  it("admits on the prompt alone, so long max_tokens requests are not refused up front", () => {
    const { slots, slot } = loadedSlots();
    assert.equal(slots.budgetMax(slot), 1000);
    // Three requests of 200 prompt tokens: a worst-case reservation with max_tokens 4096 would refuse even one.
    for (let i = 0; i < 3; i++) admit(slots, slot, 200);
    assert.deepEqual(reported(slots), { used: 600, max: 1000, running: 3, waiting: 0 });
  });

  it("refuses (503 CAPACITY) a prompt that does not fit with the headroom, or beyond max concurrency", () => {
    const { slots, slot } = loadedSlots(2);
    admit(slots, slot, 600);
    const tooBig = slots.admit(slot, 200, 0); // 600 + 200 + 256 headroom > 1000
    assert.equal(tooBig.kind, "rejected");
    assert.match((tooBig as { message: string }).message, /token budget/);
    admit(slots, slot, 100);
    const third = slots.admit(slot, 10, 0);
    assert.equal(third.kind, "rejected");
    assert.match((third as { message: string }).message, /max concurrency/);
  });

  it("reports tokens actually held: prompt plus tokens generated so far, freed on release", () => {
    const { slots, slot } = loadedSlots();
    const a = admit(slots, slot, 100);
    const b = admit(slots, slot, 50);
    assert.equal(slots.grow(slot, a, 30), undefined);
    assert.equal(slots.grow(slot, b, 20), undefined);
    assert.equal(reported(slots).used, 200);
    slots.release(slot, a, 1);
    assert.deepEqual(reported(slots), { used: 70, max: 1000, running: 1, waiting: 0 });
    slots.release(slot, b, 2);
    assert.equal(reported(slots).used, 0);
  });

  it("pauses a request whose next tokens would overflow the budget (counted as waiting) and resumes it when KV frees", async () => {
    const { slots, slot } = loadedSlots();
    const a = admit(slots, slot, 300);
    const b = admit(slots, slot, 300);
    assert.equal(slots.grow(slot, a, 300), undefined); // used 900
    const paused = slots.grow(slot, b, 200); // 1100 > 1000: b pauses, it is not killed
    assert.ok(paused instanceof Promise);
    assert.deepEqual(reported(slots), { used: 900, max: 1000, running: 2, waiting: 1 });
    let resumed = false;
    void paused.then(() => (resumed = true));
    await Promise.resolve();
    assert.equal(resumed, false);
    slots.release(slot, a, 5); // frees 600
    await paused;
    assert.equal(resumed, true);
    assert.deepEqual(reported(slots), { used: 500, max: 1000, running: 1, waiting: 0 });
  });

  it("lets the last moving request continue rather than deadlock when every other one is paused", () => {
    const { slots, slot } = loadedSlots();
    const a = admit(slots, slot, 400);
    const b = admit(slots, slot, 300);
    assert.ok(slots.grow(slot, b, 400) instanceof Promise); // 1100 > 1000: b paused
    // a is now the only request moving: it proceeds past the budget instead of pausing too.
    assert.equal(slots.grow(slot, a, 350), undefined);
    assert.equal(reported(slots).used, 1050);
    assert.equal(slots.paused(slot), 1);
  });

  it("releases a paused request (client abort) without accounting its pending tokens", () => {
    const { slots, slot } = loadedSlots();
    const a = admit(slots, slot, 500);
    const b = admit(slots, slot, 200);
    assert.ok(slots.grow(slot, b, 400) instanceof Promise);
    slots.release(slot, b, 3);
    assert.deepEqual(reported(slots), { used: 500, max: 1000, running: 1, waiting: 0 });
    assert.equal(slots.unload(TINY.id), false, "a still runs: the model is busy");
    slots.release(slot, a, 4);
    assert.equal(slots.unload(TINY.id), true);
  });
});
