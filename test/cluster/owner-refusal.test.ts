/**
 * The owner alone admits work on its Mac (issue 17). Node A knows something node B's mirror does not: its Mac's
 * (model, shape) is cooling down after errors A saw (health is each node's own). B picks the mirrored Mac,
 * forwards, and A refuses: B picks again (the refusal is not a failure of the Mac), up to MAX_OWNER_REFUSALS,
 * then counts one more as a capacity failure and answers a clean retryable error. The Mac never receives the
 * request. Needs NATS (CLUSTER_TEST_NATS_URL, default the machine's nats://127.0.0.1:4222).
 */
import assert from "node:assert/strict";
import type { Coordinator } from "../../src/coordinator.js";
import { MAX_OWNER_REFUSALS } from "../../src/dispatch/request-run.js";
import { RecordingLogger } from "../support/dispatch-harness.js";
import { joinCluster, testClusterConfig } from "../support/cluster-node.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { eventually, postJson } from "../support/http.js";

const GPT = "gpt-oss-20b";

describe("an owner refusing forwarded work", function () {
  this.timeout(60_000);
  let a: TestCoordinator;
  let b: Coordinator;
  const log = new RecordingLogger();
  const cluster = testClusterConfig();

  before(async () => {
    a = await startTestCoordinator({
      config: { ...cluster, nodeId: "a", speculativeFraction: 0 },
      macs: [{}],
    });
    b = await joinCluster(a, cluster, "b", { config: { speculativeFraction: 0 }, logger: log });
  });
  after(async () => {
    await b?.close();
    await a?.close();
  });

  it("is refused by the owner, picked again a bounded number of times, and never reaches the Mac", async () => {
    const mac = a.macs[0]!;
    await eventually(async () => b.registry.bySerial(mac.serial) !== undefined, 10_000, "B mirrors A's Mac");
    const id = b.registry.bySerial(mac.serial)!.id;
    const now = Date.now();
    for (let i = 0; i < 2; i++)
      a.coordinator.health.recordOutcome({ providerId: id, model: GPT, shape: "base", kind: "sickness", nowMs: now });
    assert.equal(a.coordinator.health.isCooledDown(id, GPT, "base", now), true, "A cooled its Mac");
    const body = { model: GPT, messages: [{ role: "user", content: "refused by the owner" }], max_tokens: 20 };
    const r = await postJson(`http://127.0.0.1:${b.httpPort}/v1/chat/completions`, a.apiKey, body);
    assert.ok(r.status === 429 || r.status === 503, `a retryable error, got ${r.status}: ${r.text}`);
    assert.equal(mac.requestsReceived.length, 0, "the refused forwards never reached the Mac");
    const refusals = log.lines.filter((l) => l.msg === "owner refused; picking again");
    assert.equal(refusals.length, MAX_OWNER_REFUSALS, "picked again after each refusal up to the bound");
    const after = log.lines.slice(log.lines.indexOf(refusals.at(-1)!) + 1).map((l) => l.msg);
    assert.deepEqual(
      after.filter((m) => m !== "inference dispatched"),
      ["failing over", "request finished"],
      "one refusal more is a failure: failed over, and with no other Mac the request ends",
    );
  });
});
