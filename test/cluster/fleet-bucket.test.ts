/**
 * One bad entry in the fleet view's bucket (a peer on another version, a forged key) must not stop a node from
 * applying the entries after it: the watch would fail on it, restart, replay up to it and never get further.
 * Needs NATS (CLUSTER_TEST_NATS_URL, default the machine's nats://127.0.0.1:4222).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { FleetBucket } from "../../src/cluster/fleet-bucket.js";
import { RecordingLogger } from "../support/dispatch-harness.js";
import { CLUSTER_TEST_NATS } from "../support/cluster-node.js";
import { eventually } from "../support/http.js";

describe("the fleet view's bucket watch", function () {
  this.timeout(30_000);
  let nc: NatsConnection;
  let bucket: FleetBucket;
  const log = new RecordingLogger();

  before(async () => {
    nc = await connect({ servers: CLUSTER_TEST_NATS });
    bucket = new FleetBucket(nc, `fbtest_${randomBytes(4).toString("hex")}`, "n1", log);
  });
  after(async () => {
    bucket.stop();
    await (await bucket.opened)?.destroy().catch(() => {});
    await nc.close();
  });

  it("skips an entry whose handler throws, logs it once, and goes on applying later entries", async () => {
    const kv = await bucket.open();
    await kv.put("poison", "{}");
    await kv.put("good-1", "{}");
    const applied: string[] = [];
    void bucket.watch((e) => {
      if (e.key === "poison") throw new TypeError("Cannot read properties of null (reading 'id')");
      applied.push(e.key);
    });
    await eventually(() => applied.includes("good-1"), 5_000, "the entry after the bad one");
    await kv.put("poison", "{ }");
    await kv.put("good-2", "{}");
    await eventually(() => applied.includes("good-2"), 5_000, "an update after the bad key's update");
    const refused = log.lines.filter((l) => l.msg === "cluster fleet view: snapshot refused");
    assert.equal(refused.length, 1, JSON.stringify(refused));
    assert.equal(refused[0]!.fields.key, "poison");
    assert.equal(log.lines.filter((l) => l.msg.includes("watch failed")).length, 0);
  });
});
