import assert from "node:assert/strict";
import { checkGates, describeRejections } from "../../../src/scheduler/gates.js";
import { meetsFloor as versionAtLeast } from "../../../src/util/version.js";
import { resolveSchedulerOptions } from "../../../src/scheduler/scheduler-options.js";
import { build, healthy, provider, request } from "./fixtures.js";

const opts = resolveSchedulerOptions();
const waived = resolveSchedulerOptions({ toolsFloorWaivedByNormalization: true });

describe("checkGates", () => {
  const table: {
    name: string;
    p: Parameters<typeof provider>[1];
    req: ReturnType<typeof request>;
    expect: string;
    o?: typeof opts;
    cooled?: boolean;
  }[] = [
    { name: "passes a plain request", p: {}, req: request("gemma"), expect: "ok" },
    { name: "rejects a model the provider does not serve", p: {}, req: request("qwen"), expect: "not_serving" },
    {
      name: "rejects vision on a text-only build",
      p: { models: [build("gemma", { isVision: false })] },
      req: request("gemma", { requiresVision: true }),
      expect: "no_vision_build",
    },
    { name: "accepts vision on a vision build", p: {}, req: request("gemma", { requiresVision: true }), expect: "ok" },
    {
      name: "fences a broken template for base requests",
      p: { models: [build("gemma", { templateRenderOk: false })] },
      req: request("gemma"),
      expect: "template_broken",
    },
    {
      name: "fences a broken template for tool requests",
      p: { models: [build("gemma", { templateRenderOk: false })] },
      req: request("gemma", { hasTools: true }),
      expect: "template_broken",
      o: waived,
    },
    {
      name: "fences a broken template for vision requests",
      p: { models: [build("gemma", { templateRenderOk: false })] },
      req: request("gemma", { requiresVision: true }),
      expect: "template_broken",
    },
    {
      name: "excludes old providers from tools when the floor applies",
      p: { version: "0.6.2" },
      req: request("gemma", { hasTools: true }),
      expect: "tools_version",
    },
    {
      name: "admits old providers to tools when normalization waives the floor",
      p: { version: "0.6.2" },
      req: request("gemma", { hasTools: true }),
      expect: "ok",
      o: waived,
    },
    {
      name: "treats an empty version as below the floor",
      p: { version: "" },
      req: request("gemma", { hasTools: true }),
      expect: "tools_version",
    },
    {
      name: "accepts a v-prefixed version at the floor",
      p: { version: "v0.6.3" },
      req: request("gemma", { hasTools: true }),
      expect: "ok",
    },
    {
      name: "does not apply the tools floor to base requests",
      p: { version: "0.5.0" },
      req: request("gemma"),
      expect: "ok",
    },
    { name: "excludes draining providers", p: { status: "draining" }, req: request("gemma"), expect: "draining" },
    {
      name: "excludes providers in the exclude set",
      p: {},
      req: request("gemma", { exclude: ["p1"] }),
      expect: "excluded",
    },
    {
      name: "excludes other accounts for a pinned request",
      p: {},
      req: request("gemma", { pinnedAccountId: "acct-2" }),
      expect: "pinned_account",
    },
    {
      name: "excludes machines a provider_serials allowlist does not name",
      p: { serial: "S-1" },
      req: { ...request("gemma"), allowedSerials: new Set(["S-2"]) },
      expect: "serial_not_allowed",
    },
    {
      name: "admits a machine the allowlist names",
      p: { serial: "S-2" },
      req: { ...request("gemma"), allowedSerials: new Set(["S-2"]) },
      expect: "ok",
    },
    {
      name: "keeps a private machine from other accounts",
      p: { privateOnly: true },
      req: { ...request("gemma"), callerAccountId: "acct-2" },
      expect: "private_machine",
    },
    {
      name: "keeps a private machine from a request of no account",
      p: { privateOnly: true },
      req: request("gemma"),
      expect: "private_machine",
    },
    {
      name: "lets a private machine serve its owner, whatever the pools",
      p: { privateOnly: true },
      req: { ...request("gemma"), callerAccountId: "acct-1", pools: { keys: new Set(["oss"]), reassign: false } },
      expect: "ok",
    },
    {
      name: "keeps a paid X-Route: prefer fallback off the caller's own machines",
      p: {},
      req: { ...request("gemma"), avoidAccountId: "acct-1" },
      expect: "own_machine",
    },
    {
      name: "an allowlist keeps the capability gates",
      p: { serial: "S-2", models: [build("gemma", { isVision: false })] },
      req: { ...request("gemma", { requiresVision: true }), allowedSerials: new Set(["S-2"]) },
      expect: "no_vision_build",
    },
    {
      name: "excludes a thermally critical provider",
      p: { thermal: "critical" },
      req: request("gemma"),
      expect: "thermal_critical",
    },
    {
      name: "excludes a cooled (provider, model, shape)",
      p: {},
      req: request("gemma"),
      expect: "cooled_down",
      cooled: true,
    },
    {
      name: "rejects a prompt larger than the build's context",
      p: {},
      req: request("gemma", { estimatedPromptTokens: 131_070 }),
      expect: "context_too_small",
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      const health = healthy({ isCooledDown: () => t.cooled === true });
      const r = checkGates(provider("p1", t.p), t.req, 0, health, t.o ?? opts);
      assert.equal(r.ok ? "ok" : r.reason, t.expect);
    });
  }

  it("describes the most common rejection in words", () => {
    assert.equal(
      describeRejections("gemma", ["no_vision_build", "no_vision_build", "draining"]),
      "gemma: no vision-capable build is connected",
    );
  });
});

describe("versionAtLeast", () => {
  const table: [string, string, boolean][] = [
    ["0.6.3", "0.6.3", true],
    ["0.6.10", "0.6.3", true],
    ["0.6.2", "0.6.3", false],
    ["v1.0", "0.6.3", true],
    ["0.6.3-rc1", "0.6.3", false],
    ["0.6.4-rc1", "0.6.3", true],
    ["", "0.6.3", false],
    ["garbage", "0.6.3", false],
  ];
  for (const [v, floor, want] of table)
    it(`compares ${v || "(empty)"} against ${floor}`, () => assert.equal(versionAtLeast(v, floor), want));
});
