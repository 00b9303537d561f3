/**
 * `coordinator demo --nodes N`: bounded (each node is a whole coordinator in one process) and never more nodes
 * than Macs. Refusals are usage errors (exit 2, one line naming the flag) before anything starts.
 */
import assert from "node:assert/strict";
import { main } from "../../../src/cli/main.js";

async function run(argv: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = "";
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await main(argv, {}), stderr };
  } finally {
    process.stderr.write = write;
  }
}

describe("demo --nodes", () => {
  it("refuses 10 nodes (the bound is 9)", async () => {
    const r = await run(["demo", "--nodes", "10", "--macs", "20"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--nodes must be at most 9, got 10/);
  });

  it("refuses more nodes than Macs", async () => {
    const r = await run(["demo", "--nodes", "5", "--macs", "4"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--nodes \(5\) must not exceed --macs \(4\)/);
  });

  it("refuses a non-positive node count", async () => {
    const r = await run(["demo", "--nodes", "0"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--nodes needs a positive number/);
  });
});
