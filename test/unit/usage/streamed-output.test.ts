import assert from "node:assert/strict";
import type { Delta } from "../../../src/inference/types.js";
import { StreamedOutput } from "../../../src/usage/streamed-output.js";

describe("StreamedOutput", () => {
  it("counts a tool call only once it carries a name, however many deltas name its index", () => {
    const out = new StreamedOutput();
    const empty: Delta[] = Array.from({ length: 256 }, (_, index) => ({ kind: "tool_call", index }));
    out.add([{ kind: "content", text: "ok" }, ...empty]);
    assert.equal(out.toolCalls, 0);
    out.add([{ kind: "tool_call", index: 3, id: "call_1", name: "get_weather" }]);
    out.add([{ kind: "tool_call", index: 3, arguments: '{"city":"Paris"}' }]);
    out.add([{ kind: "tool_call", index: 4, name: "get_time", arguments: "{}" }]);
    assert.equal(out.toolCalls, 2);
    assert.ok(out.tokens > 2, `tokens ${out.tokens}`);
  });
});
