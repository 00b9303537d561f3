import assert from "node:assert/strict";
import { FRESH_DISPATCH_MS, StartGate } from "../../../src/cluster/start-gate.js";

const WALL = 1_800_000_000_000;
const timing = { heartbeatMs: 1_000, nodeTimeoutMs: 3_000, silenceMs: 3_000, firstTokenBaseMs: 5_000 };

/** A gate whose node has beaten on time once a second up to monotonic `t`. */
function beatingUntil(t: number, g = new StartGate(timing)): StartGate {
  for (let at = 0; at <= t; at += 1_000) g.beat(at);
  return g;
}

describe("StartGate (when a forwarded dispatch may skip the owner's event-loop turn)", () => {
  it("caps the window at FRESH_DISPATCH_MS and at half of every give-up clock", () => {
    assert.equal(new StartGate(timing).windowMs, FRESH_DISPATCH_MS);
    assert.equal(new StartGate({ ...timing, firstTokenBaseMs: 60 }).windowMs, 30);
    assert.equal(new StartGate({ ...timing, silenceMs: 40 }).windowMs, 20);
    assert.equal(new StartGate({ ...timing, heartbeatMs: 10, nodeTimeoutMs: 20 }).windowMs, 10);
  });

  it("lets a young dispatch start at once, up to the window and not past it", () => {
    const g = beatingUntil(10_000);
    assert.equal(g.atOnce(WALL, WALL, 10_000), true);
    assert.equal(g.atOnce(WALL - FRESH_DISPATCH_MS, WALL, 10_000), true, "exactly the window");
    assert.equal(g.atOnce(WALL - FRESH_DISPATCH_MS - 1, WALL, 10_000), false, "one ms older");
    assert.equal(g.atOnce(WALL + FRESH_DISPATCH_MS + 1, WALL, 10_000), false, "from a clock too far ahead");
  });

  it("keeps the turn for a dispatch from an older node (no sentAtMs)", () => {
    assert.equal(beatingUntil(10_000).atOnce(undefined, WALL, 10_000), false);
  });

  it("keeps the turn for a node timeout after this node stalled past 1.5 beats (peers may have taken it for dead)", () => {
    const g = beatingUntil(10_000);
    assert.equal(g.beat(11_500), undefined, "1.5 beats: on time enough");
    assert.equal(g.atOnce(WALL, WALL, 11_500), true);
    assert.equal(g.beat(13_501), 2_001, "2,001 ms since the last beat: a stall, reported for the log");
    assert.equal(g.atOnce(WALL, WALL, 13_501), false);
    assert.equal(g.atOnce(WALL, WALL, 16_500), false);
    assert.equal(g.atOnce(WALL, WALL, 16_501), true, "a node timeout after the late beat");
  });

  it("keeps the turn while NATS is down and for a node timeout after it is back", () => {
    const g = beatingUntil(10_000);
    g.disconnected();
    assert.equal(g.atOnce(WALL, WALL, 10_100), false);
    g.reconnected(12_000);
    assert.equal(g.atOnce(WALL, WALL, 14_999), false);
    assert.equal(g.atOnce(WALL, WALL, 15_000), true);
  });
});
