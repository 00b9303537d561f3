/**
 * The owner alone admits work on its Mac (issue 17): node B routes on a mirror that is stale on purpose (A
 * publishes its Mac once and then not for a minute), so B believes A's only Mac is idle while A runs a request
 * on its single slot. B's forward is refused by A (never a double booking) and B's request waits for the Mac
 * instead, then runs on it once the slot is free. Needs NATS (CLUSTER_TEST_NATS_URL, default the machine's).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { loadConfig, type Config } from "../../src/config/config.js";
import { startCoordinator, type Coordinator } from "../../src/coordinator.js";
import { silentLogger } from "../../src/util/logger.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { eventually, postJson } from "../support/http.js";

const NATS = process.env.CLUSTER_TEST_NATS_URL ?? "nats://127.0.0.1:4222";
const GPT = "gpt-oss-20b";

describe("a stale fleet view in a cluster", function () {
  this.timeout(60_000);
  let a: TestCoordinator;
  let b: Coordinator;
  const prefix = `t${randomBytes(4).toString("hex")}`;
  const stale: Partial<Config> = {
    cluster: NATS,
    clusterPrefix: prefix,
    clusterHeartbeatMs: 200,
    clusterNodeTimeoutMs: 1_000,
    clusterSilenceMs: 1_000,
    // A publishes its Mac at connect and then only every 5 s: B's view stays stale for the request below (the
    // window between A's Mac starting and B picking is milliseconds), and is refreshed by A's refusal.
    clusterSnapshotMs: 5_000,
    clusterRefreshMs: 5_000,
  };

  before(async () => {
    a = await startTestCoordinator({
      config: { ...stale, nodeId: "a", speculativeFraction: 0 },
      macs: [{ instant: false, timeScale: 1, maxConcurrency: 1, naturalTokens: { min: 60, max: 60 } }],
    });
    b = await startCoordinator(
      Object.freeze({
        ...loadConfig({}),
        httpPort: 0,
        grpcPort: 0,
        host: "127.0.0.1",
        adminKey: a.adminKey,
        heartbeatIntervalMs: 200,
        warmPoolIntervalMs: 0,
        speculativeFraction: 0,
        ...stale,
        nodeId: "b",
      }),
      { db: a.db.db, logger: silentLogger },
    );
  });
  after(async () => {
    await b?.close();
    await a?.close();
  });

  it("is refused by the owner and never runs two requests on a one-slot Mac", async () => {
    const mac = a.macs[0]!;
    await eventually(async () => b.registry.bySerial(mac.serial) !== undefined, 10_000, "B mirrors A's Mac");
    const body = { model: GPT, messages: [{ role: "user", content: "one slot only" }], max_tokens: 60 };
    const first = postJson(`${a.apiBase}/chat/completions`, a.apiKey, body);
    await eventually(async () => mac.requestsReceived.length === 1, 5_000, "A's Mac runs the first request");
    const mirror = b.registry.bySerial(mac.serial)!;
    assert.equal(mirror.inflight.size, 0, "B's mirror does not know the Mac is busy");
    const second = postJson(`http://127.0.0.1:${b.httpPort}/v1/chat/completions`, a.apiKey, body);
    const [r1, r2] = await Promise.all([first, second]);
    assert.equal(r1.status, 200);
    assert.equal(r2.status, 200, `the second request waited for the slot: ${r2.text}`);
    assert.equal(mac.requestsReceived.length, 2, "the refused forward never reached the Mac");
    // A one-slot Mac that is sent a second request while busy refuses it (outcome "rejected"): none was.
    assert.deepEqual(
      mac.records.map((r) => r.outcome),
      ["completed", "completed"],
    );
  });
});
