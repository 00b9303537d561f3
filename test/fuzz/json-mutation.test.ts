/** The fuzz suite's body mutations write what they claim to (fast, no server). */
import assert from "node:assert/strict";
import fc from "fast-check";
import { bodyCase } from "./json-mutation.js";
import {
  DUPLICATES,
  LongString,
  RawJson,
  mutatedTree,
  renderBody,
  writeJson,
  type JsonObjectTree,
} from "./json-tree.js";

describe("fuzz body mutations", () => {
  it("writes duplicate keys, raw tokens, own __proto__ members and long strings as JSON.parse sees them", () => {
    const o: JsonObjectTree = { a: 1, [DUPLICATES]: [["a", 2]] };
    Object.defineProperty(o, "__proto__", { value: { x: 1 }, enumerable: true, writable: true, configurable: true });
    const text = writeJson({ o, n: new RawJson("1e400"), s: new LongString("é", 3), lone: "\ud800" });
    assert.equal(text, '{"o":{"a":1,"__proto__":{"x":1},"a":2},"n":1e400,"s":"ééé","lone":"\\ud800"}');
    const parsed = JSON.parse(text) as { o: Record<string, unknown>; n: number };
    assert.equal(parsed.o.a, 2);
    assert.ok(Object.hasOwn(parsed.o, "__proto__"));
    assert.equal(parsed.n, Infinity);
  });

  it("applies drop, repeat and nest at pre-order positions, capping a repeat at ~2 MB", () => {
    const start = { messages: [{ role: "user", content: "x".repeat(1_000) }] };
    // Slots: 0 root, 1 messages, 2 messages[0], 3 role, 4 content.
    assert.deepEqual(mutatedTree({ kind: "tree", start, treeOps: [{ op: "drop", at: 3 }], byteOps: [] }), {
      messages: [{ content: "x".repeat(1_000) }],
    });
    const repeated = mutatedTree({
      kind: "tree",
      start,
      treeOps: [{ op: "repeat", at: 2, times: 10_001 }],
      byteOps: [],
    }) as { messages: unknown[] };
    assert.ok(repeated.messages.length > 1_000 && repeated.messages.length < 2_100, String(repeated.messages.length));
    const nested = writeJson(
      mutatedTree({
        kind: "tree",
        start: { a: 1 },
        treeOps: [{ op: "nest", at: 1, depth: 3, kind: "array" }],
        byteOps: [],
      }),
    );
    assert.equal(nested, '{"a":[[[1]]]}');
    assert.deepEqual(
      start,
      { messages: [{ role: "user", content: "x".repeat(1_000) }] },
      "the valid body is not modified",
    );
  });

  it("renders the same bytes for the same seed", () => {
    const arb = bodyCase(fc.constant({ model: "m", messages: [{ role: "user", content: "hi" }] }));
    const a = fc.sample(arb, { numRuns: 50, seed: 7 }).map((c) => renderBody(c).toString("base64"));
    const b = fc.sample(arb, { numRuns: 50, seed: 7 }).map((c) => renderBody(c).toString("base64"));
    assert.deepEqual(a, b);
  });
});
