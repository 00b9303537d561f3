/**
 * Two coordinators on one PostgreSQL and one NATS (issue 17): a Mac connected to node A serves a request that
 * arrived at node B (forwarded, its events relayed back, billed once by B); a stale mirror gets an explicit
 * refusal from the owner and the request runs elsewhere; when A dies its Macs re-home to B. Needs NATS
 * (CLUSTER_TEST_NATS_URL, default the machine's nats://127.0.0.1:4222); each run uses its own subject prefix.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import type { Config } from "../../src/config/config.js";
import type { Coordinator } from "../../src/coordinator.js";
import { silentLogger } from "../../src/util/logger.js";
import { joinCluster, testClusterConfig } from "../support/cluster-node.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { eventually } from "../support/http.js";

const GPT = "gpt-oss-20b";

describe("two coordinators in a cluster", function () {
  this.timeout(60_000);
  let a: TestCoordinator;
  let b: Coordinator;
  // Snapshots every 50 ms: a stale mirror is what one test makes on purpose, and it must not last.
  const clusterConfig: Partial<Config> = { ...testClusterConfig(), clusterSnapshotMs: 50 };

  before(async () => {
    a = await startTestCoordinator({ config: { ...clusterConfig, nodeId: "a" }, macs: [{}] });
    b = await joinCluster(a, clusterConfig, "b", { logger: silentLogger });
  });
  after(async () => {
    await b?.close();
    await a?.close();
  });

  it("B mirrors A's Mac and serves a request on it, billed once", async () => {
    const mac = a.macs[0]!;
    await eventually(async () => b.registry.bySerial(mac.serial) !== undefined, 10_000, "B mirrors A's Mac");
    assert.equal(b.fleet.status().mode, "cluster");
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${b.httpPort}/v1`, apiKey: a.apiKey, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: GPT,
      messages: [{ role: "user", content: "hello over the cluster" }],
      max_tokens: 20,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let completionTokens = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
    }
    assert.ok(text.length > 0, "streamed content");
    assert.ok(completionTokens > 0);
    assert.equal(mac.requestsReceived.length, 1, "the Mac on A ran it");
    const health = (await (await fetch(`http://127.0.0.1:${b.httpPort}/health`)).json()) as {
      providers_connected: number;
      cluster: { node: string; peers: string[]; providers_mirrored: number; nats_connected: boolean };
    };
    assert.equal(health.providers_connected, 0, "no Mac is connected to B itself");
    assert.equal(health.cluster.providers_mirrored, 1);
    assert.equal(health.cluster.nats_connected, true);
    assert.match(health.cluster.node, /^b-[0-9a-f]{6}$/);
    assert.deepEqual(
      health.cluster.peers.map((p) => p.replace(/-[0-9a-f]{6}$/, "")),
      ["a"],
    );
  });

  it("a fence decided on B ends the Mac's session on A, and the fenced Mac stays out of the fleet", async () => {
    const mac = a.macs[0]!;
    const mirror = b.registry.bySerial(mac.serial)!;
    await b.providers.fence(mirror.id, "test: fenced on the other node");
    await eventually(async () => a.coordinator.registry.bySerial(mac.serial) === undefined, 10_000, "A ended it");
    await eventually(async () => b.registry.bySerial(mac.serial) === undefined, 10_000, "B's mirror is gone");
    // The Mac retries and is refused by its identity's fence (in PostgreSQL, whichever node it reaches).
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(a.coordinator.registry.bySerial(mac.serial), undefined);
  });
});
