import assert from "node:assert/strict";
import { ProviderRegistry } from "../../../src/registry/provider-registry.js";
import { MODEL, inflight, mirroredState, registration, slot } from "./fixtures.js";

const ID = "prov_remote";

describe("ProviderRegistry.mirror", () => {
  it("creates the record on first sight under the owner's id and takes the owner's state as is", () => {
    const r = new ProviderRegistry();
    assert.equal(r.get(ID), undefined);
    const rec = r.mirror(ID, registration("A"), mirroredState({ pool: "p1", pendingLoads: ["gemma"] }), 500);
    assert.equal(r.get(ID), rec);
    assert.equal(r.bySerial("A"), rec);
    assert.deepEqual(
      r.forModel(MODEL).map((p) => p.id),
      [ID],
    );
    assert.equal(rec.status, "serving");
    assert.equal(rec.pool, "p1");
    assert.deepEqual(rec.slots, [slot()]);
    assert.deepEqual([...rec.pendingLoads], [["gemma", 500]]);
    assert.equal(rec.lastHeartbeatMs, 500);
    assert.equal(rec.heartbeats, 1);
    assert.equal(rec.remote, true, "the scheduler sees it as another coordinator's Mac");
    assert.equal(r.add(registration("B"), 500).remote, false);
    r.remove(r.bySerial("B")!.id);
    const again = r.mirror(ID, registration("A"), mirroredState(), 900);
    assert.equal(again, rec, "the same record is updated, not re-added");
    assert.equal(r.size, 1);
    assert.equal(rec.heartbeats, 2);
    assert.equal(rec.pool, undefined);
    assert.equal(rec.pendingLoads.size, 0);
  });

  it("replaces the mirrored in-flight entries wholesale and drops those the owner no longer lists", () => {
    const r = new ProviderRegistry();
    const rec = r.mirror(ID, registration("A"), mirroredState({ inflight: [inflight("a"), inflight("b")] }), 0);
    assert.deepEqual([...rec.inflight.keys()], ["a", "b"]);
    assert.ok([...rec.inflight.values()].every((x) => x.mirrored === true));
    r.mirror(
      ID,
      registration("A"),
      mirroredState({ inflight: [inflight("b", { usedTokens: 700 }), inflight("c")] }),
      1,
    );
    assert.deepEqual([...rec.inflight.keys()].sort(), ["b", "c"]);
    assert.equal(rec.inflight.get("b")?.usedTokens, 700, "the owner's newer numbers, not the old copy");
    assert.equal(rec.inflight.get("c")?.mirrored, true);
    r.mirror(ID, registration("A"), mirroredState(), 2);
    assert.equal(rec.inflight.size, 0);
  });

  it("keeps this process's own entries, takes over the owner's seen/started flags, and ends them only by removeInflight", () => {
    const r = new ProviderRegistry();
    const rec = r.mirror(ID, registration("A"), mirroredState(), 0);
    const own = inflight("mine", { reservedTokens: 2000 });
    r.addInflight(ID, own);
    // The owner does not count it yet (the forward is still on its way): it stays, untouched.
    r.mirror(ID, registration("A"), mirroredState({ inflight: [inflight("theirs")] }), 1);
    assert.equal(rec.inflight.get("mine"), own);
    assert.equal(own.mirrored, undefined);
    assert.equal(own.seenByProvider, false);
    // The owner counts it, started and seen by the Mac: the flags move over, the entry stays ours.
    r.mirror(
      ID,
      registration("A"),
      mirroredState({
        inflight: [inflight("mine", { startedByProvider: true, seenByProvider: true, reservedTokens: 5 })],
      }),
      2,
    );
    assert.equal(rec.inflight.get("mine"), own);
    assert.equal(own.startedByProvider, true);
    assert.equal(own.seenByProvider, true);
    assert.equal(own.reservedTokens, 2000, "our own accounting, not the owner's");
    assert.equal(rec.inflight.has("theirs"), false);
    // A later snapshot with stale (false) flags does not take them back, and the owner dropping it leaves it ours.
    r.mirror(ID, registration("A"), mirroredState({ inflight: [inflight("mine")] }), 3);
    assert.equal(own.seenByProvider, true);
    r.mirror(ID, registration("A"), mirroredState(), 4);
    assert.equal(rec.inflight.get("mine"), own);
    r.removeInflight(ID, "mine");
    assert.equal(rec.inflight.size, 0);
  });

  it("keeps the warm index in step with the mirrored slots", () => {
    const r = new ProviderRegistry();
    const warm = () => (r.view().warmByModel?.get(MODEL) ?? []).map((p) => p.id);
    r.mirror(ID, registration("A"), mirroredState({ slots: [slot({ state: "loading" })] }), 0);
    assert.deepEqual(warm(), []);
    r.mirror(ID, registration("A"), mirroredState({ slots: [slot({ state: "idle" })] }), 1);
    assert.deepEqual(warm(), [ID]);
    r.mirror(ID, registration("A"), mirroredState({ slots: [slot({ state: "running" })] }), 2);
    assert.deepEqual(warm(), [ID], "listed once");
    r.mirror(ID, registration("A"), mirroredState({ slots: [] }), 3);
    assert.deepEqual(warm(), []);
    r.mirror(ID, registration("A"), mirroredState({ slots: [slot()] }), 4);
    r.remove(ID);
    assert.deepEqual(warm(), [], "a dropped mirror leaves the warm index");
  });

  it("emits a capacity event for every snapshot but tells no heartbeat listener", () => {
    const r = new ProviderRegistry();
    const capacity: (string | undefined)[] = [];
    let heartbeats = 0;
    r.onCapacity((m) => capacity.push(m));
    r.onHeartbeat(() => heartbeats++);
    r.mirror(ID, registration("A"), mirroredState(), 0);
    assert.ok(capacity.length >= 1);
    capacity.length = 0;
    r.mirror(ID, registration("A"), mirroredState(), 1);
    assert.deepEqual(capacity, [undefined]);
    assert.equal(heartbeats, 0);
  });

  it("keeps the previous total memory when the owner reports none", () => {
    const r = new ProviderRegistry();
    const rec = r.mirror(ID, registration("A"), mirroredState({ totalMemoryGb: 48 }), 0);
    r.mirror(ID, registration("A"), mirroredState({ totalMemoryGb: 0 }), 1);
    assert.equal(rec.totalMemoryGb, 48);
  });
});
