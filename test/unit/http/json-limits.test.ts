import assert from "node:assert/strict";
import { checkJsonLimits, type JsonLimits } from "../../../src/http/json-limits.js";

const limits: JsonLimits = { maxDepth: 4, maxArrayLength: 3, maxObjectKeys: 2, maxStringChars: 5 };
const check = (text: string) => checkJsonLimits(text, limits)?.limit;

describe("checkJsonLimits", () => {
  it("accepts every limit exactly and refuses one past it", () => {
    assert.equal(check('{"a":{"b":[[1]]}}'), undefined, "depth 4");
    assert.equal(check('{"a":{"b":[[[1]]]}}'), "depth");
    assert.equal(check("[1,2,3]"), undefined);
    assert.equal(check("[1,2,3,4]"), "array_length");
    assert.equal(check('{"a":1,"b":2}'), undefined);
    assert.equal(check('{"a":1,"b":2,"c":3}'), "object_keys");
    assert.equal(check('["12345"]'), undefined);
    assert.equal(check('["123456"]'), "string_length");
    assert.equal(check('{"123456":1}'), "string_length", "keys are strings too");
  });

  it("counts elements per container, not across siblings or nested containers", () => {
    assert.equal(check("[[1,2,3],[1,2,3],[1,2,3]]"), undefined);
    assert.equal(check('{"a":[1,2,3],"b":{"c":1,"d":2}}'), undefined);
    assert.equal(check("[[],[],[]]"), undefined);
    assert.equal(check("[{},{},{}]"), undefined);
  });

  it("ignores structure inside strings and handles escaped quotes and backslashes", () => {
    assert.equal(check('["[[[[","]]]]",",,,,"]'), undefined);
    assert.equal(check(String.raw`["a\"b","c\\"]`), undefined);
    assert.equal(check(String.raw`["\\\"x"]`), undefined, "5 characters as written");
    assert.equal(check(String.raw`["a\\",[[[[1]]]]]`), "depth", "an escaped backslash ends the string");
  });

  it("names the limit in a message a caller can act on", () => {
    const v = checkJsonLimits("[".repeat(5_000) + "]".repeat(5_000), { ...limits, maxDepth: 64 });
    assert.deepEqual(v, { limit: "depth", max: 64, message: "JSON nesting is deeper than 64 levels" });
  });

  it("leaves malformed text to the parser", () => {
    assert.equal(check('["unterminated'), undefined);
    assert.equal(check("]]]]"), undefined);
    assert.equal(check(""), undefined);
  });

  it("passes a 16 MiB body of small tokens within generous limits (its cost against JSON.parse is a benchmark matter)", () => {
    const big = JSON.stringify({
      model: "m",
      messages: Array.from({ length: 99_000 }, (_, i) => ({
        role: "user",
        content: `message ${i} ${"word ".repeat(30)}`,
      })),
    });
    assert.ok(big.length > 15 * 1024 * 1024);
    const generous = { maxDepth: 64, maxArrayLength: 100_000, maxObjectKeys: 10_000, maxStringChars: 8 * 1024 * 1024 };
    assert.equal(checkJsonLimits(big, generous), undefined);
    // One element past the array limit is caught in the same body.
    assert.equal(checkJsonLimits(big, { ...generous, maxArrayLength: 98_999 })?.limit, "array_length");
  });
});
