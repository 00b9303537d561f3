import assert from "node:assert/strict";
import { RELAY_PIECE_BYTES, relayPieces } from "../../../src/cluster/relay-chunks.js";
import { encodeRelay, MAX_RELAY_MESSAGE_BYTES } from "../../../src/cluster/cluster-messages.js";
import type { Delta } from "../../../src/inference/types.js";
import { wireBounds } from "../../../src/protocol/wire-bounds.js";

/** What a consumer would assemble from deltas: content, reasoning, and each tool call's id, name and arguments. */
function assemble(deltas: readonly Delta[]) {
  const out = { content: "", reasoning: "", calls: new Map<number, { id?: string; name?: string; args: string }>() };
  for (const d of deltas) {
    if (d.kind === "content") out.content += d.text;
    else if (d.kind === "reasoning") out.reasoning += d.text;
    else if (d.kind === "tool_call") {
      const c = out.calls.get(d.index) ?? { args: "" };
      if (d.id) c.id = d.id;
      if (d.name) c.name = d.name;
      c.args += d.arguments ?? "";
      out.calls.set(d.index, c);
    }
  }
  return out;
}

describe("relayPieces", () => {
  it("keeps a small chunk whole", () => {
    const deltas: Delta[] = [
      { kind: "role", role: "assistant" },
      { kind: "content", text: "hello" },
    ];
    assert.deepEqual(relayPieces(deltas), [deltas]);
  });

  it("cuts the largest chunk a Mac may send (all its text escaped, 1,024 labelled deltas) into relay-sized frames that mean the same", () => {
    const control = "\u0001".repeat(wireBounds.maxChunkTextChars - 2_046); // JSON writes each as \u0001: 6 bytes
    const deltas: Delta[] = [
      { kind: "content", text: control },
      ...Array.from(
        { length: 1_023 },
        (_, index): Delta => ({
          kind: "tool_call",
          index: index % 256,
          id: "i".repeat(128),
          name: "n".repeat(256),
          arguments: "a\u00e9",
        }),
      ),
    ];
    const pieces = relayPieces(deltas);
    assert.ok(pieces.length > 1);
    for (const p of pieces) {
      const bytes = encodeRelay([
        { requestId: "r".repeat(64), providerId: "p".repeat(64), event: { kind: "chunk", deltas: p } },
      ]).length;
      assert.ok(bytes <= RELAY_PIECE_BYTES + 512, `${bytes} bytes`);
      assert.ok(bytes < MAX_RELAY_MESSAGE_BYTES);
    }
    assert.deepEqual(assemble(pieces.flat()), assemble(deltas));
  });

  it("continues a long tool call's arguments under its index, its id and name on the first piece only, never splitting a surrogate pair", () => {
    const args = `{"path":"a.txt","text":"${"😀".repeat(60_000)}"}`;
    const pieces = relayPieces([{ kind: "tool_call", index: 2, id: "call_1", name: "write_file", arguments: args }]);
    const flat = pieces.flat();
    assert.ok(flat.length > 1);
    assert.deepEqual(flat[0], { ...flat[0], kind: "tool_call", index: 2, id: "call_1", name: "write_file" });
    for (const d of flat.slice(1)) assert.deepEqual(Object.keys(d).sort(), ["arguments", "index", "kind"]);
    for (const d of flat) {
      const text = (d as { arguments: string }).arguments;
      assert.ok(!/^[\udc00-\udfff]/.test(text) && !/[\ud800-\udbff]$/.test(text), "a piece starts or ends mid-pair");
    }
    assert.equal(assemble(flat).calls.get(2)?.args, args);
  });
});
