import assert from "node:assert/strict";
import { ProviderRegistry } from "../../../src/registry/provider-registry.js";
import { heartbeat, inflight, mirroredState, registration, slot } from "./fixtures.js";

/** The test's in-flight entries reserve `reservedTokens`, 100 of them already used. */
const inflightOf = (requestId: string, reservedTokens: number) =>
  inflight(requestId, { reservedTokens, remainingOutputTokens: reservedTokens - 100 });

describe("ProviderRegistry", () => {
  it("indexes providers by model and serial and rebuilds the view only on membership change", () => {
    const r = new ProviderRegistry();
    const a = r.add(registration("A"), 0);
    r.add(registration("B", ["gemma-4-26b"]), 0);
    assert.deepEqual(
      r.forModel("gpt-oss-20b").map((p) => p.serial),
      ["A"],
    );
    assert.equal(r.bySerial("B")?.models[0]?.id, "gemma-4-26b");
    const v1 = r.view();
    r.applyHeartbeat(a.id, heartbeat([slot()]), 10);
    assert.equal(r.view().providers, v1.providers, "a heartbeat does not copy the provider list");
    r.remove(a.id);
    assert.notEqual(r.view().providers, v1.providers);
    assert.equal(r.forModel("gpt-oss-20b").length, 0);
    assert.equal(r.bySerial("A"), undefined);
  });

  it("stops counting a request on top of the heartbeat only once a heartbeat sent after the provider started it arrives", () => {
    const r = new ProviderRegistry();
    const p = r.add(registration("A"), 0);
    r.addInflight(p.id, inflightOf("r1", 600));
    r.applyHeartbeat(p.id, heartbeat([slot()]), 10);
    assert.equal(
      p.inflight.get("r1")!.seenByProvider,
      false,
      "a heartbeat that crossed the request on the wire does not include it",
    );
    r.markStarted(p.id, "r1");
    r.applyHeartbeat(p.id, heartbeat([slot()]), 20);
    assert.equal(p.inflight.get("r1")!.seenByProvider, true);
  });

  it("releases a finished request's slot share at once instead of waiting for the next heartbeat", () => {
    const r = new ProviderRegistry();
    const p = r.add(registration("A"), 0);
    r.addInflight(p.id, inflightOf("r1", 600));
    r.markStarted(p.id, "r1");
    r.applyHeartbeat(p.id, heartbeat([slot({ numRunning: 1, tokenBudgetUsed: 600 })]), 10);
    const models: (string | undefined)[] = [];
    r.onCapacity((m) => models.push(m));
    r.removeInflight(p.id, "r1");
    assert.equal(p.slots[0]!.numRunning, 0);
    assert.equal(p.slots[0]!.tokenBudgetUsed, 0);
    assert.deepEqual(models, ["gpt-oss-20b"], "waiters for the model are woken");
  });

  it("leaves the heartbeat's numbers alone for a request the provider never reported", () => {
    const r = new ProviderRegistry();
    const p = r.add(registration("A"), 0);
    r.applyHeartbeat(p.id, heartbeat([slot({ numRunning: 3, tokenBudgetUsed: 5000 })]), 10);
    r.addInflight(p.id, inflightOf("r2", 600));
    r.removeInflight(p.id, "r2");
    assert.equal(p.slots[0]!.numRunning, 3);
    assert.equal(p.slots[0]!.tokenBudgetUsed, 5000);
  });

  it("clears a pending load when the model shows up warm", () => {
    const r = new ProviderRegistry();
    const p = r.add(registration("A"), 0);
    r.markPendingLoad(p.id, "gpt-oss-20b", 5);
    assert.ok(p.pendingLoads.has("gpt-oss-20b"));
    r.applyHeartbeat(p.id, heartbeat([slot({ state: "idle", numRunning: 0 })]), 10);
    assert.equal(p.pendingLoads.size, 0);
  });
});

describe("ProviderRegistry warm index", () => {
  it("tracks which providers hold each model loaded, as heartbeats load and unload it", () => {
    const r = new ProviderRegistry();
    const a = r.add(registration("A", ["gpt-oss-20b", "gemma-4-26b"]), 0);
    const warm = (m: string) => (r.view().warmByModel?.get(m) ?? []).map((p) => p.serial);
    assert.deepEqual(warm("gpt-oss-20b"), []);
    r.applyHeartbeat(a.id, heartbeat([slot({ state: "running" })]), 1);
    assert.deepEqual(warm("gpt-oss-20b"), ["A"]);
    r.applyHeartbeat(a.id, heartbeat([slot({ model: "gemma-4-26b", state: "idle" })]), 2);
    assert.deepEqual(warm("gpt-oss-20b"), []);
    assert.deepEqual(warm("gemma-4-26b"), ["A"]);
    r.applyHeartbeat(a.id, heartbeat([slot({ model: "gemma-4-26b", state: "loading" })]), 3);
    assert.deepEqual(warm("gemma-4-26b"), [], "a loading slot is not warm");
    r.applyHeartbeat(a.id, heartbeat([slot({ model: "gemma-4-26b", state: "running" })]), 4);
    r.remove(a.id);
    assert.deepEqual(warm("gemma-4-26b"), [], "a removed provider leaves the index");
  });
});

describe("ProviderRegistry pool members", () => {
  it("counts each pool's providers through assignment, reassignment, mirroring and removal", () => {
    const r = new ProviderRegistry();
    const a = r.add(registration("A"), 0);
    const b = r.add(registration("B"), 0);
    const counts = () => [r.poolMembers("gpt"), r.poolMembers("gemma")];
    assert.deepEqual(counts(), [0, 0], "a new provider is in no pool");
    r.setPool(a.id, "gpt");
    r.setPool(b.id, "gpt");
    r.setPool(b.id, "gpt");
    assert.deepEqual(counts(), [2, 0], "assigning the same pool twice counts once");
    r.setPool(b.id, "gemma");
    assert.deepEqual(counts(), [1, 1]);
    // Another node's Mac carries its owner's pool, and moves with it.
    r.mirror("prov_remote", registration("C"), mirroredState({ pool: "gemma" }), 0);
    assert.deepEqual(counts(), [1, 2]);
    r.mirror("prov_remote", registration("C"), mirroredState({ pool: "gpt" }), 1);
    assert.deepEqual(counts(), [2, 1]);
    r.remove("prov_remote");
    assert.equal(r.remove(b.id)?.pool, "gemma", "a removed record is left as it was");
    r.setPool(a.id, undefined);
    assert.deepEqual(counts(), [0, 0]);
    // The count agrees with the fleet it stands for.
    const byScan = (pool: string) => r.view().providers.filter((p) => p.pool === pool).length;
    r.setPool(a.id, "gemma");
    assert.equal(r.poolMembers("gemma"), byScan("gemma"));
  });
});
