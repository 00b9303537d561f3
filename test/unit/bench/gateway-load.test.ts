/**
 * The load generator's per-URL groups (bench/gateway-load.ts `urlGroups`): requests rotated over several URLs
 * are reported per group with their raw samples, against two real loopback HTTP servers, one slower than the
 * other, so a mix-up of the rotation and the grouping shows in the figures.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { runLoadCell } from "../../../bench/gateway-load.js";

/** An SSE server answering every request with one content event after `delayMs`. */
async function sseServer(delayMs: number): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      hits++;
      setTimeout(() => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.end('data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n');
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    hits: () => hits,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe("load generator groups", () => {
  it("reports each URL group's requests and first tokens apart, in rotation order", async () => {
    const fast = await sseServer(0);
    const slow = await sseServer(100);
    try {
      const row = await runLoadCell(
        { label: "mixed", url: [fast.url, slow.url, slow.url], urlGroups: ["fast", "slow", "slow"], apiKeys: ["k"] },
        "stream",
        3,
        "{}",
        400,
        0,
      );
      const g = row.groups!;
      assert.deepEqual(Object.keys(g).sort(), ["fast", "slow"]);
      assert.equal(g.fast!.ok + g.slow!.ok, row.ok);
      assert.equal(g.fast!.firstTokenMs.length, g.fast!.ok);
      // The slow group's server holds each answer 100 ms; the fast one answers at once.
      assert.ok(Math.min(...g.slow!.firstTokenMs) >= 99, `slow min ${Math.min(...g.slow!.firstTokenMs)}`);
      assert.ok(Math.max(...g.fast!.firstTokenMs) < 99, `fast max ${Math.max(...g.fast!.firstTokenMs)}`);
      assert.ok(slow.hits() > fast.hits(), `two URLs in three are the slow server's (${fast.hits()}/${slow.hits()})`);
    } finally {
      await fast.close();
      await slow.close();
    }
  });

  it("reports no groups when the target names none", async () => {
    const s = await sseServer(0);
    try {
      const row = await runLoadCell({ label: "one", url: s.url, apiKeys: ["k"] }, "stream", 1, "{}", 50, 0);
      assert.ok(row.ok > 0);
      assert.equal(row.groups, undefined);
    } finally {
      await s.close();
    }
  });
});
