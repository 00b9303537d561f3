import assert from "node:assert/strict";
import { SseParser } from "../../../../src/tools/loadtest/sse-parser.js";

describe("loadtest SseParser", () => {
  it("parses events split across arbitrary chunks", () => {
    const p = new SseParser();
    const text = 'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n';
    const events = [];
    for (let i = 0; i < text.length; i += 3) events.push(...p.feed(text.slice(i, i + 3)));
    assert.deepEqual(
      events.map((e) => e.data),
      ['{"a":1}', '{"b":2}', "[DONE]"],
    );
  });

  it("handles CRLF split between chunks, comments, event names and multi-line data", () => {
    const p = new SseParser();
    const a = p.feed(": ping\r\nevent: message\r\ndata: one\r");
    const b = p.feed("\ndata: two\r\n\r\n");
    assert.deepEqual(a, []);
    assert.deepEqual(b, [{ event: "message", data: "one\ntwo" }]);
  });

  it("ignores blank-line blocks without data and flushes a trailing event at the end", () => {
    const p = new SseParser();
    assert.deepEqual(p.feed(": only a comment\n\n\n"), []);
    assert.deepEqual(p.feed("data:x"), []);
    assert.deepEqual(p.end(), [{ event: null, data: "x" }]);
  });
});
