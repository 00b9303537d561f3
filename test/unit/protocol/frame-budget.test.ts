import assert from "node:assert/strict";
import {
  FrameBudget,
  HEARTBEAT_BURST,
  MAX_STRIKES,
  MIN_HEARTBEAT_GAP_FRACTION,
  STRIKE_WINDOW_MS,
  UNSOLICITED_FRAME_BURST,
  UNSOLICITED_FRAMES_PER_SEC,
} from "../../../src/protocol/frame-budget.js";

const INTERVAL_MS = 10_000;
const budget = (startMs = 0) => new FrameBudget({ heartbeatIntervalMs: INTERVAL_MS, clock: { nowMs: () => startMs } });

describe("FrameBudget: heartbeats", () => {
  /** A budget whose heartbeat burst was spent at t=0. */
  const steady = () => {
    const b = budget();
    for (let i = 0; i < HEARTBEAT_BURST; i++)
      assert.equal(b.admit("heartbeat", 0), "ok", `heartbeat ${i + 1} of the burst`);
    return b;
  };

  it("admits a burst of event-driven heartbeats (registration, load start and finish) back to back", () => {
    steady();
  });

  it("then admits a heartbeat exactly half the interval after the previous one", () => {
    const b = steady();
    assert.equal(b.admit("heartbeat", INTERVAL_MS * MIN_HEARTBEAT_GAP_FRACTION), "ok");
    assert.equal(b.admit("heartbeat", INTERVAL_MS), "ok");
    assert.equal(b.strikes(INTERVAL_MS), 0);
  });

  it("and drops one 1 ms sooner, with a strike, without losing the next on-time one", () => {
    const b = steady();
    assert.equal(b.admit("heartbeat", INTERVAL_MS * MIN_HEARTBEAT_GAP_FRACTION - 1), "drop");
    assert.equal(b.strikes(4_999), 1);
    assert.equal(b.admit("heartbeat", INTERVAL_MS * MIN_HEARTBEAT_GAP_FRACTION), "ok");
  });

  it("uses the injected clock when no time is passed", () => {
    let now = 0;
    const b = new FrameBudget({ heartbeatIntervalMs: INTERVAL_MS, clock: { nowMs: () => now } });
    for (let i = 0; i < HEARTBEAT_BURST; i++) b.admit("heartbeat");
    now = 1_000;
    assert.equal(b.admit("heartbeat"), "drop");
    now = 5_000;
    assert.equal(b.admit("heartbeat"), "ok");
  });

  it("refuses a heartbeat interval that is not a positive number", () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => new FrameBudget({ heartbeatIntervalMs: bad, clock: { nowMs: () => 0 } }), RangeError);
    }
  });
});

describe("FrameBudget: unsolicited frames", () => {
  it("admits a burst of 50 ModelLoadStatus frames at once and drops the 51st", () => {
    const b = budget();
    for (let i = 0; i < UNSOLICITED_FRAME_BURST; i++) assert.equal(b.admit("load_status", 0), "ok", `frame ${i + 1}`);
    assert.equal(b.admit("load_status", 0), "drop");
    assert.equal(b.strikes(0), 1);
  });

  it("refills at 20 frames per second", () => {
    const b = budget();
    for (let i = 0; i < UNSOLICITED_FRAME_BURST; i++) b.admit("load_status", 0);
    const refillMs = 1000 / UNSOLICITED_FRAMES_PER_SEC;
    assert.equal(b.admit("load_status", refillMs - 1), "drop");
    assert.equal(b.admit("load_status", refillMs), "ok");
  });

  it("keeps separate buckets for load status and foreign request ids, and never limits other frames", () => {
    const b = budget();
    for (let i = 0; i < UNSOLICITED_FRAME_BURST; i++) b.admit("foreign", 0);
    assert.equal(b.admit("foreign", 0), "drop");
    assert.equal(b.admit("load_status", 0), "ok");
    for (let i = 0; i < 10_000; i++) assert.equal(b.admit("other", 0), "ok");
  });
});

describe("FrameBudget: strikes", () => {
  /** A budget that has spent its foreign burst at t=0, so each further foreign frame at t=0 is a strike. */
  const exhausted = () => {
    const b = budget();
    for (let i = 0; i < UNSOLICITED_FRAME_BURST; i++) b.admit("foreign", 0);
    return b;
  };

  it("drops the 100th strike and disconnects on the 101st within 10 s", () => {
    const b = exhausted();
    for (let i = 1; i < MAX_STRIKES; i++) assert.equal(b.admit("foreign", 0), "drop", `strike ${i}`);
    assert.equal(b.admit("foreign", 0), "drop", "strike 100");
    assert.equal(b.strikes(0), MAX_STRIKES);
    assert.equal(b.admit("foreign", 0), "disconnect", "strike 101");
  });

  it("stays disconnected for every later frame", () => {
    const b = exhausted();
    for (let i = 0; i <= MAX_STRIKES; i++) b.admit("foreign", 0);
    assert.equal(b.admit("other", 60_000), "disconnect");
    assert.equal(b.admit("heartbeat", 60_000), "disconnect");
  });

  it("forgets strikes once they are 10 s old, so 100 every 10 s is survivable", () => {
    const b = budget();
    for (let i = 0; i < UNSOLICITED_FRAME_BURST; i++) b.admit("load_status", 1);
    for (let i = 0; i < MAX_STRIKES; i++) assert.equal(b.admit("load_status", 1), "drop");
    assert.equal(b.strikes(STRIKE_WINDOW_MS), 100, "a strike 9,999 ms old still counts");
    assert.equal(b.strikes(STRIKE_WINDOW_MS + 1), 0, "a strike 10,000 ms old has left the window");
    for (let i = 0; i < UNSOLICITED_FRAME_BURST; i++) b.admit("load_status", STRIKE_WINDOW_MS + 1);
    for (let i = 0; i < MAX_STRIKES; i++) assert.equal(b.admit("load_status", STRIKE_WINDOW_MS + 1), "drop");
    assert.equal(b.admit("load_status", STRIKE_WINDOW_MS + 1), "disconnect");
  });

  it("counts strikes across kinds towards one limit", () => {
    const b = exhausted();
    for (let i = 0; i < HEARTBEAT_BURST; i++) b.admit("heartbeat", 0);
    for (let i = 0; i < 50; i++) assert.equal(b.admit("heartbeat", 0), "drop");
    for (let i = 0; i < 50; i++) assert.equal(b.admit("foreign", 0), "drop");
    assert.equal(b.admit("foreign", 0), "disconnect");
  });
});
