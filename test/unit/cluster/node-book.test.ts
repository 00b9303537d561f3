import assert from "node:assert/strict";
import { NodeBook } from "../../../src/cluster/node-book.js";

const TIMEOUT_MS = 3000;

describe("NodeBook", () => {
  it("reports a node as new on its first beat only", () => {
    const b = new NodeBook(TIMEOUT_MS);
    assert.equal(b.isAlive("a"), false);
    assert.equal(b.beat("a", 0), true);
    assert.equal(b.beat("a", 1000), false);
    assert.equal(b.isAlive("a"), true);
    assert.deepEqual(b.alive, ["a"]);
  });

  const boundary: { name: string; lastBeatMs: number; nowMs: number; dead: boolean }[] = [
    { name: "one ms before the timeout", lastBeatMs: 1000, nowMs: 1000 + TIMEOUT_MS - 1, dead: false },
    { name: "exactly at the timeout", lastBeatMs: 1000, nowMs: 1000 + TIMEOUT_MS, dead: true },
    { name: "past the timeout", lastBeatMs: 1000, nowMs: 1000 + TIMEOUT_MS + 500, dead: true },
  ];
  for (const c of boundary)
    it(`expires a node silent ${c.name}: ${c.dead ? "dead" : "alive"}`, () => {
      const b = new NodeBook(TIMEOUT_MS);
      b.beat("a", 0);
      b.beat("a", c.lastBeatMs);
      assert.deepEqual(b.expire(c.nowMs), c.dead ? ["a"] : []);
      assert.equal(b.isAlive("a"), !c.dead);
    });

  it("measures silence from the latest beat, expires each dead node once, and leaves the others", () => {
    const b = new NodeBook(TIMEOUT_MS);
    b.beat("a", 0);
    b.beat("b", 0);
    b.beat("b", 2000);
    assert.deepEqual(b.expire(TIMEOUT_MS), ["a"]);
    assert.deepEqual(b.expire(TIMEOUT_MS + 100), [], "already forgotten");
    assert.deepEqual(b.alive, ["b"]);
    assert.deepEqual(b.expire(2000 + TIMEOUT_MS), ["b"]);
    assert.deepEqual(b.alive, []);
  });

  it("treats a node that beats again after it was expired as new", () => {
    const b = new NodeBook(TIMEOUT_MS);
    b.beat("a", 0);
    b.expire(TIMEOUT_MS);
    assert.equal(b.beat("a", TIMEOUT_MS + 1), true);
    assert.equal(b.isAlive("a"), true);
    assert.deepEqual(b.expire(2 * TIMEOUT_MS), [], "its clock restarted at the new beat");
  });
});

describe("NodeBook after this node's own outage", () => {
  it("forgiveAll gives every known node a fresh timeout from now", () => {
    const book = new NodeBook(3_000);
    book.beat("a", 0);
    book.beat("b", 1_000);
    book.forgiveAll(10_000);
    assert.deepEqual(book.expire(12_999), [], "silent during our outage, not judged for it");
    assert.deepEqual(book.expire(13_000).sort(), ["a", "b"]);
  });
});
