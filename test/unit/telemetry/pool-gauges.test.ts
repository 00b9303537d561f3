/** Per-pool gauges (issue 14, item 6): the pool rows from the registry view, and their gauges. */
import assert from "node:assert/strict";
import { ModelAliases } from "../../../src/models/model-aliases.js";
import { poolRows } from "../../../src/scheduler/model-pools.js";
import { reportPoolGauges } from "../../../src/telemetry/fleet-gauges.js";
import { setStatsd } from "../../../src/telemetry/metrics.js";
import { fakeStatsd } from "../../support/fake-statsd.js";
import { build, inflight, provider, slot, view } from "../scheduler/fixtures.js";

describe("per-pool gauges", () => {
  afterEach(() => setStatsd(undefined));

  it("counts members, warm and serving members, requests, budgets and decode rate per pool, an alias's builds together", () => {
    const aliases = new ModelAliases([{ alias: "pub", build: "gemma", previousBuild: "oss" }]);
    const v = view(
      provider("a", {
        pool: "pub",
        slots: [slot("gemma", { state: "running", tokenBudgetUsed: 50_000, observedDecodeTps: 40 })],
        inflight: [inflight("r1", "gemma"), inflight("r2", "gemma")],
      }),
      provider("b", { pool: "pub", slots: [slot("oss", { state: "idle" })] }),
      provider("c", { pool: "pub" }),
      provider("d", { pool: "qwen", models: [build("qwen")], slots: [slot("qwen", { state: "loading" })] }),
      provider("e"),
    );
    assert.deepEqual(poolRows(v, aliases), [
      {
        pool: "pub",
        assigned: 3,
        warm: 2,
        serving: 1,
        activeRequests: 2,
        tokenBudgetRemaining: 100_000 + 150_000,
        tokenBudgetTotal: 300_000,
        decodeTps: 40,
      },
      {
        pool: "qwen",
        assigned: 1,
        warm: 0,
        serving: 0,
        activeRequests: 0,
        tokenBudgetRemaining: 0,
        tokenBudgetTotal: 0,
        decodeTps: 0,
      },
    ]);
  });

  it("reports each pool's gauges, and a pool that emptied once more at zero", () => {
    const lines: string[] = [];
    setStatsd(fakeStatsd(lines));
    const row = {
      pool: "pub",
      assigned: 3,
      warm: 2,
      serving: 1,
      activeRequests: 2,
      tokenBudgetRemaining: 5,
      tokenBudgetTotal: 9,
      decodeTps: 40,
    };
    const seen = reportPoolGauges([row]);
    assert.deepEqual(lines, [
      "pools.assigned:3|g|#pool:pub",
      "pools.warm:2|g|#pool:pub",
      "pools.serving:1|g|#pool:pub",
      "pools.active_requests:2|g|#pool:pub",
      "pools.token_budget_remaining:5|g|#pool:pub",
      "pools.token_budget_total:9|g|#pool:pub",
      "pools.decode_tps:40|g|#pool:pub",
    ]);
    lines.length = 0;
    const next = reportPoolGauges([], seen);
    assert.equal(next.size, 0);
    assert.ok(lines.includes("pools.assigned:0|g|#pool:pub") && lines.length === 7, lines.join("\n"));
  });
});
