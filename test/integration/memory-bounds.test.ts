/**
 * Issue 13's memory findings, measured on the resident set of a real `coordinator serve` child process:
 * - three unauthenticated 300 MB uploads to the admin API took it from 125 MiB to 1,950 MiB;
 * - 20 concurrent 15 MiB bodies on the consumer API reached 568 MiB.
 * Bounds are loose (tens of MiB against hundreds): the test tells "bounded" from "grows with the uploads".
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  freePorts,
  provisionOverAdmin,
  startCoordinatorProcess,
  type CoordinatorProcess,
} from "../support/coordinator-process.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { rawRequest, type RawResponse } from "../support/raw-http.js";

const MiB = 1024 * 1024;

/** Resident set of a process, bytes (Linux /proc). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m![1]) * 1024;
}

/** Runs `work` while sampling the process's RSS every 25 ms; resolves with the work's result and the peak. */
async function peakRssDuring<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = rssOf(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 25);
  try {
    const result = await work();
    peak = Math.max(peak, rssOf(pid));
    return { result, peak };
  } finally {
    clearInterval(timer);
  }
}

describe("memory under hostile uploads (coordinator serve child process)", function () {
  this.timeout(60_000);
  let testDb: TestDatabase;
  let proc: CoordinatorProcess | undefined;
  let pid: number;
  let apiKey: string;
  let port: number;
  const adminKey = `admin-${randomBytes(12).toString("hex")}`;

  before(async function () {
    if (process.platform !== "linux") this.skip();
    testDb = await createTestDatabase();
    const [httpPort, grpcPort] = (await freePorts(2)) as [number, number];
    port = httpPort;
    // Two maximum-size bodies may be held at once.
    proc = await startCoordinatorProcess({
      databaseUrl: testDb.url,
      httpPort,
      grpcPort,
      adminKey,
      env: { MAX_INFLIGHT_BODY_BYTES: String(32 * MiB) },
    });
    pid = proc.child.pid!;
    ({ apiKey } = await provisionOverAdmin(proc.baseUrl, adminKey, {
      tier: "ACCOUNT_TIER_CONSUMER",
      creditMicroUsd: 1_000_000n,
    }));
    // Warm the paths the test uses, so first-use allocations are not counted as growth.
    for (let i = 0; i < 3; i++) {
      await rawRequest(port, {
        path: "/coordinator.admin.v1.AdminService/ListProviders",
        headers: { "content-type": "application/json", "content-length": 2 },
        body: "{}",
      });
      await rawRequest(port, {
        path: "/v1/chat/completions",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", "content-length": 2 },
        body: "{}",
      });
    }
  });
  after(async () => {
    await proc?.stop();
    await testDb?.close();
  });

  it("refuses three unauthenticated 300 MB admin uploads from their headers, with almost no growth", async () => {
    const before = rssOf(pid);
    const { result, peak } = await peakRssDuring(pid, () =>
      Promise.all(
        Array.from({ length: 3 }, () =>
          rawRequest(port, {
            path: "/coordinator.admin.v1.AdminService/CreateAccount",
            headers: { "content-type": "application/json", "content-length": 300_000_000 },
            uploadBytes: 300_000_000,
          }),
        ),
      ),
    );
    for (const r of result) {
      assert.equal(r.status, 401);
      assert.equal(r.closed, true);
      assert.ok(r.bytesSent < 100 * MiB, `upload cut short (${r.bytesSent} bytes)`);
    }
    const growth = peak - before;
    assert.ok(growth < 40 * MiB, `RSS grew ${(growth / MiB).toFixed(0)} MiB (from ${(before / MiB).toFixed(0)} MiB)`);
  });

  it("holds at most MAX_INFLIGHT_BODY_BYTES of 20 concurrent 15 MiB bodies and refuses the rest with 503", async () => {
    const before = rssOf(pid);
    const sockets: { destroy(): void }[] = [];
    // Each client sends all but the last byte and waits: every accepted body stays held while RSS is sampled.
    const { result, peak } = await peakRssDuring(pid, async () => {
      const responses: Promise<RawResponse>[] = Array.from({ length: 20 }, () =>
        rawRequest(port, {
          path: "/v1/chat/completions",
          headers: {
            authorization: `Bearer ${apiKey}`,
            "content-type": "application/json",
            "content-length": 15 * MiB,
          },
          uploadBytes: 15 * MiB - 1,
          responseTimeoutMs: 4_000,
          onOpen: (s) => sockets.push(s),
        }),
      );
      return Promise.all(responses);
    });
    for (const s of sockets) s.destroy();
    const refused = result.filter((r) => r.status === 503);
    const held = result.filter((r) => r.status === 0);
    assert.ok(held.length <= 2, `at most two 15 MiB bodies fit in 32 MiB (held: ${held.length})`);
    assert.equal(refused.length + held.length, 20, `statuses: ${result.map((r) => r.status).join(",")}`);
    for (const r of refused) {
      assert.equal(r.headers["retry-after"], "1");
      assert.equal(r.closed, true);
    }
    const growth = peak - before;
    assert.ok(
      growth < 150 * MiB,
      `RSS grew ${(growth / MiB).toFixed(0)} MiB (from ${(before / MiB).toFixed(0)} MiB); unbounded it was ~280 MiB here`,
    );
  });
});
