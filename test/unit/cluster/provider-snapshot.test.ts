import assert from "node:assert/strict";
import {
  checkSnapshot,
  decodeSnapshot,
  snapshotFingerprint,
  snapshotOf,
} from "../../../src/cluster/provider-snapshot.js";
import { ProviderRegistry } from "../../../src/registry/provider-registry.js";
import { MODEL, heartbeat, inflight, mirroredState, registration, slot } from "../registry/fixtures.js";

/** An owner's Mac with a heartbeat, a pool, one request in flight and a pending load. */
function ownedMac() {
  const r = new ProviderRegistry();
  const rec = r.add({ ...registration("A", [MODEL, "gemma-4-26b"]), privateOnly: true }, 0, "prov_a");
  r.applyHeartbeat(rec.id, heartbeat([slot()]), 10);
  r.setPool(rec.id, "pool-1");
  r.addInflight(rec.id, inflight("r1", { promptTokens: 50 }));
  r.markStarted(rec.id, "r1");
  r.markPendingLoad(rec.id, "gemma-4-26b", 20);
  return { r, rec };
}

describe("provider snapshot", () => {
  it("survives JSON and decoding, and mirrors into a registry as the owner sees the Mac", () => {
    const { rec } = ownedMac();
    const snap = snapshotOf(rec, "node-a", "sess-1");
    const decoded = decodeSnapshot(JSON.stringify(snap));
    assert.ok(decoded);
    assert.deepEqual(decoded, JSON.parse(JSON.stringify(snap)), "nothing but undefined fields is lost");
    assert.equal(decoded.node, "node-a");
    assert.equal(decoded.session, "sess-1");
    assert.equal(decoded.providerId, "prov_a");

    const other = new ProviderRegistry();
    const m = other.mirror(decoded.providerId, decoded.registration, decoded.state, 100);
    assert.equal(m.id, "prov_a");
    assert.equal(m.serial, "A");
    assert.equal(m.privateOnly, true);
    assert.deepEqual(
      m.models.map((x) => x.id),
      [MODEL, "gemma-4-26b"],
    );
    assert.deepEqual(m.hardware, rec.hardware);
    assert.equal(m.status, "serving");
    assert.equal(m.pool, "pool-1");
    assert.deepEqual(m.slots, rec.slots);
    assert.deepEqual(m.warmModels, [MODEL]);
    assert.equal(m.freeForLoadGb, 20);
    assert.deepEqual([...m.pendingLoads.keys()], ["gemma-4-26b"]);
    const r1 = m.inflight.get("r1");
    assert.ok(r1);
    assert.equal(r1.reservedTokens, 1000);
    assert.equal(r1.promptTokens, 50);
    assert.equal(r1.startedByProvider, true);
    assert.equal(r1.mirrored, true);
  });

  it("publishes in-flight entries without the mirrored flag", () => {
    const { rec } = ownedMac();
    rec.inflight.set("r2", inflight("r2", { mirrored: true }));
    const snap = snapshotOf(rec, "node-a", "s");
    assert.deepEqual(
      snap.state.inflight.map((x) => x.requestId),
      ["r1", "r2"],
    );
    for (const x of snap.state.inflight) assert.equal("mirrored" in x, false, x.requestId);
    assert.equal(JSON.stringify(snap).includes("mirrored"), false);
  });

  const changes: { name: string; change: (f: ReturnType<typeof ownedMac>) => void; changed: boolean }[] = [
    { name: "a heartbeat", change: ({ r, rec }) => r.applyHeartbeat(rec.id, heartbeat([slot()]), 30), changed: true },
    { name: "a request added", change: ({ r, rec }) => r.addInflight(rec.id, inflight("r9")), changed: true },
    {
      name: "a request started by the Mac",
      change: ({ r, rec }) => {
        r.addInflight(rec.id, inflight("r9"));
        const before = snapshotFingerprint(rec);
        r.markStarted(rec.id, "r9");
        assert.notEqual(snapshotFingerprint(rec), before, "markStarted alone");
      },
      changed: true,
    },
    { name: "a request ended", change: ({ r, rec }) => r.removeInflight(rec.id, "r1"), changed: true },
    { name: "a pool move", change: ({ r, rec }) => r.setPool(rec.id, "pool-2"), changed: true },
    { name: "leaving its pool", change: ({ r, rec }) => r.setPool(rec.id, undefined), changed: true },
    {
      name: "a status change",
      change: ({ rec }) => {
        rec.status = "draining";
      },
      changed: true,
    },
    { name: "a load", change: ({ r, rec }) => r.markPendingLoad(rec.id, "other", 40), changed: true },
    { name: "a load finished", change: ({ r, rec }) => r.loadFinished(rec.id, "gemma-4-26b"), changed: true },
    { name: "streamed tokens", change: ({ r, rec }) => r.addUsedTokens(rec.id, "r1", 250), changed: false },
    { name: "nothing", change: () => {}, changed: false },
  ];
  for (const c of changes)
    it(`${c.changed ? "changes" : "keeps"} the fingerprint on ${c.name}`, () => {
      const f = ownedMac();
      const before = snapshotFingerprint(f.rec);
      c.change(f);
      assert.equal(snapshotFingerprint(f.rec) !== before, c.changed);
    });

  const valid = () => JSON.parse(JSON.stringify(snapshotOf(ownedMac().rec, "node-a", "s"))) as Record<string, any>;
  const bad: { name: string; edit: (s: Record<string, any>) => unknown }[] = [
    { name: "version 2", edit: (s) => ({ ...s, v: 2 }) },
    { name: "no version", edit: ({ v: _v, ...s }) => s },
    { name: "version as a string", edit: (s) => ({ ...s, v: "1" }) },
    { name: "an array", edit: (s) => [s] },
    { name: "null", edit: () => null },
    { name: "a number node", edit: (s) => ({ ...s, node: 1 }) },
    { name: "no session", edit: ({ session: _s, ...s }) => s },
    { name: "no providerId", edit: ({ providerId: _p, ...s }) => s },
    { name: "no registration", edit: ({ registration: _r, ...s }) => s },
    { name: "no serial", edit: (s) => ({ ...s, registration: { ...s.registration, serial: undefined } }) },
    { name: "no accountId", edit: (s) => ({ ...s, registration: { ...s.registration, accountId: 5 } }) },
    { name: "models not a list", edit: (s) => ({ ...s, registration: { ...s.registration, models: {} } }) },
    { name: "no hardware", edit: (s) => ({ ...s, registration: { ...s.registration, hardware: null } }) },
    // The registry's record reads these as it builds the mirror: one missing would throw there (and, before the
    // watch isolated entries, wedge every node's fleet view on that key).
    { name: "a model that is null", edit: (s) => ({ ...s, registration: { ...s.registration, models: [null] } }) },
    {
      name: "a model without an id",
      edit: (s) => ({ ...s, registration: { ...s.registration, models: [{ ...s.registration.models[0], id: 3 }] } }),
    },
    { name: "empty hardware", edit: (s) => ({ ...s, registration: { ...s.registration, hardware: {} } }) },
    {
      name: "hardware without a chip name",
      edit: (s) => ({
        ...s,
        registration: { ...s.registration, hardware: { ...s.registration.hardware, chipName: null } },
      }),
    },
    { name: "no version", edit: (s) => ({ ...s, registration: { ...s.registration, version: undefined } }) },
    { name: "a mistyped decode rate", edit: (s) => ({ ...s, registration: { ...s.registration, decodeTps: "70" } }) },
    { name: "no state", edit: ({ state: _s, ...s }) => s },
    { name: "slots not a list", edit: (s) => ({ ...s, state: { ...s.state, slots: null } }) },
    { name: "inflight not a list", edit: (s) => ({ ...s, state: { ...s.state, inflight: {} } }) },
    { name: "pendingLoads not a list", edit: (s) => ({ ...s, state: { ...s.state, pendingLoads: "m" } }) },
    { name: "warmModels not a list", edit: (s) => ({ ...s, state: { ...s.state, warmModels: undefined } }) },
    { name: "no status", edit: (s) => ({ ...s, state: { ...s.state, status: 0 } }) },
    // Entries reach the registry's accounting and the scheduler's arithmetic as they are.
    {
      name: "an in-flight entry without a request id",
      edit: (s) => ({ ...s, state: { ...s.state, inflight: [{ ...s.state.inflight[0], requestId: undefined }] } }),
    },
    {
      name: "an in-flight entry with a mistyped reservation",
      edit: (s) => ({ ...s, state: { ...s.state, inflight: [{ ...s.state.inflight[0], reservedTokens: "1000" }] } }),
    },
    { name: "an in-flight entry that is not an object", edit: (s) => ({ ...s, state: { ...s.state, inflight: [7] } }) },
    {
      name: "a slot without its token budget",
      edit: (s) => ({ ...s, state: { ...s.state, slots: [{ ...s.state.slots[0], tokenBudgetMax: undefined }] } }),
    },
    { name: "a slot that is not an object", edit: (s) => ({ ...s, state: { ...s.state, slots: [null] } }) },
    { name: "a pending load that is not a name", edit: (s) => ({ ...s, state: { ...s.state, pendingLoads: [1] } }) },
    { name: "a warm model that is not a name", edit: (s) => ({ ...s, state: { ...s.state, warmModels: [{}] } }) },
  ];
  it("decodes the valid shape", () => {
    assert.ok(decodeSnapshot(JSON.stringify(valid())));
  });
  for (const b of bad)
    it(`rejects a snapshot with ${b.name}`, () => {
      assert.equal(decodeSnapshot(JSON.stringify(b.edit(valid()))), undefined);
    });
  it("checks a snapshot carried as a value (inside an owner's refusal) the same way", () => {
    const v = valid();
    assert.equal(checkSnapshot(v), v);
    for (const b of bad) assert.equal(checkSnapshot(b.edit(valid())), undefined, b.name);
    assert.equal(checkSnapshot(JSON.stringify(v)), undefined, "text is not a snapshot value");
  });

  it("rejects text that is not JSON", () => {
    for (const t of ["", "{", "not json", '{"v":1']) assert.equal(decodeSnapshot(t), undefined, t);
  });

  it("fixture sanity: a mirrored state decodes into the registry", () => {
    const r = new ProviderRegistry();
    const m = r.mirror("prov_x", registration("X"), mirroredState({ inflight: [inflight("a")] }), 0);
    assert.equal(m.inflight.get("a")?.mirrored, true);
  });
});
