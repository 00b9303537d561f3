/**
 * The owner's verdict on one machine (GET /v1/me/providers): each state the issue names — fenced, cooled, idle,
 * serving — plus the exclusions routing applies (template, tools floor, breaker, thermal, draining, no pool yet).
 */
import assert from "node:assert/strict";
import { providerVerdict, type VerdictHealth, type VerdictInput } from "../../../src/scheduler/provider-verdict.js";
import { build, inflight, provider, slot } from "./fixtures.js";

const fine: VerdictHealth = { isBreakerOpen: () => false, isShapeCooledDown: () => false, shapeStrikesToCool: 2 };
const input = (over: Partial<VerdictInput> = {}): VerdictInput => ({
  provider: provider("m", { pool: "oss", heartbeats: 1 }),
  fenceReason: null,
  nowMs: 1000,
  health: fine,
  options: { toolsVersionFloor: "0.6.5", toolsFloorWaivedByNormalization: true },
  poolsOn: true,
  ...over,
});

describe("providerVerdict", () => {
  it("a fenced machine: not routable, and the fence's reason", () => {
    const v = providerVerdict(input({ fenceReason: "usage claims repeatedly above the coordinator's count" }));
    assert.deepEqual(v, {
      state: "fenced",
      routable: false,
      reason: "excluded: fenced by the coordinator (usage claims repeatedly above the coordinator's count)",
    });
  });

  it("an offline machine", () => {
    assert.deepEqual(providerVerdict(input({ provider: undefined })), {
      state: "offline",
      routable: false,
      reason: "offline: not connected",
    });
  });

  it("a serving machine names the models it is serving", () => {
    const v = providerVerdict(
      input({
        provider: provider("m", {
          pool: "oss",
          inflight: [inflight("r1", "oss"), inflight("r2", "oss")],
          slots: [slot("oss", { state: "running" })],
        }),
      }),
    );
    assert.deepEqual(v, { state: "serving", routable: true, reason: "serving oss" });
  });

  it("an idle, unloaded machine: its pool has enough warm Macs", () => {
    assert.deepEqual(providerVerdict(input()), {
      state: "idle",
      routable: true,
      reason: "idle: its pool (oss) has enough warm Macs",
    });
  });

  it("an idle machine with a model loaded", () => {
    const v = providerVerdict(input({ provider: provider("m", { pool: "oss", slots: [slot("oss")] }) }));
    assert.equal(v.reason, "idle: oss loaded, no request for it right now");
    assert.equal(v.routable, true);
  });

  it("a cooled (machine, model, shape) says how many errors, and the machine stays routable for the rest", () => {
    const health: VerdictHealth = { ...fine, isShapeCooledDown: (_p, m, s) => m === "gemma" && s === "tools" };
    const v = providerVerdict(input({ health }));
    assert.equal(v.routable, true);
    assert.match(v.reason, /^idle: .*; cooling down after 2 errors on tools on gemma$/);
    const all: VerdictHealth = { ...fine, isShapeCooledDown: () => true };
    assert.equal(
      providerVerdict(input({ health: all })).routable,
      false,
      "every model and shape cooled: nothing routable",
    );
  });

  it("an open health breaker, overheating and draining block the machine", () => {
    assert.match(
      providerVerdict(input({ health: { ...fine, isBreakerOpen: () => true } })).reason,
      /^cooling down: too many errors/,
    );
    assert.equal(providerVerdict(input({ health: { ...fine, isBreakerOpen: () => true } })).routable, false);
    assert.deepEqual(providerVerdict(input({ provider: provider("m", { pool: "oss", thermal: "critical" }) })), {
      state: "idle",
      routable: false,
      reason: "excluded: overheating (thermal state critical)",
    });
    assert.equal(
      providerVerdict(input({ provider: provider("m", { pool: "oss", status: "draining" }) })).state,
      "draining",
    );
  });

  it("a broken chat template excludes the build, and every build broken excludes the machine", () => {
    const one = providerVerdict(
      input({
        provider: provider("m", { pool: "oss", models: [build("gemma", { templateRenderOk: false }), build("oss")] }),
      }),
    );
    assert.equal(one.routable, true);
    assert.match(one.reason, /excluded: chat template broken on build gemma/);
    const all = providerVerdict(
      input({ provider: provider("m", { pool: "oss", models: [build("gemma", { templateRenderOk: false })] }) }),
    );
    assert.deepEqual(all, { state: "idle", routable: false, reason: "excluded: chat template broken on build gemma" });
  });

  it("a version below the tools floor is excluded from tool calls only while the floor is enforced", () => {
    const old = provider("m", { pool: "oss", version: "0.6.0" });
    assert.match(
      providerVerdict(
        input({ provider: old, options: { toolsVersionFloor: "0.6.5", toolsFloorWaivedByNormalization: false } }),
      ).reason,
      /excluded from tool calls: version 0\.6\.0 is below the tools floor 0\.6\.5/,
    );
    assert.doesNotMatch(providerVerdict(input({ provider: old })).reason, /tools floor/);
  });

  it("no pool yet under pools is 'connecting'; a private machine needs none", () => {
    assert.deepEqual(providerVerdict(input({ provider: provider("m") })), {
      state: "connecting",
      routable: false,
      reason: "connecting: waiting for its first heartbeat to join a model pool",
    });
    const priv = providerVerdict(input({ provider: provider("m", { privateOnly: true }) }));
    assert.equal(priv.routable, true);
    assert.equal(priv.reason, "idle: nothing loaded, waiting for your requests; private: serves only your account");
    assert.equal(
      providerVerdict(input({ provider: provider("m"), poolsOn: false })).reason,
      "idle: the network has enough warm Macs for its models",
    );
  });
});
