/**
 * The load generator's per-URL groups (bench/gateway-load.ts `urlGroups`): requests rotated over several URLs
 * are reported per group with their raw samples, against two real loopback HTTP servers, one slower than the
 * other, so a mix-up of the rotation and the grouping shows in the figures.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { runLoadCell } from "../../../bench/gateway-load.js";
import { ClientPool, primeConnections } from "../../../bench/load-client.js";

/** An SSE server answering every request with one content event after `delayMs`. */
async function sseServer(
  delayMs: number,
): Promise<{ url: string; hits: () => number; connections: () => number; close: () => Promise<void> }> {
  let hits = 0;
  let connections = 0;
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
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    hits: () => hits,
    connections: () => connections,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
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

describe("load generator connections", () => {
  it("opens each worker's connection to every URL before measuring, and no cell opens another", async () => {
    const a = await sseServer(0);
    const b = await sseServer(5);
    const target = { label: "two", url: [a.url, b.url], apiKeys: ["k"] };
    const pool = new ClientPool();
    try {
      await primeConnections(target, 4, "{}", true, pool);
      assert.deepEqual([a.connections(), b.connections()], [4, 4], "one connection per worker and URL");
      assert.deepEqual([a.hits(), b.hits()], [4, 4]);
      for (let round = 0; round < 2; round++) {
        const row = await runLoadCell(target, "stream", 4, "{}", 150, 0, undefined, pool);
        assert.ok(row.ok > 8, `${row.ok} requests`);
      }
      assert.deepEqual([a.connections(), b.connections()], [4, 4], "the cells reused them");
    } finally {
      pool.destroy();
      await a.close();
      await b.close();
    }
  });
});
