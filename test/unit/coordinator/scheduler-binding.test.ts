import assert from "node:assert/strict";
import { bindScheduler, type SchedulerBindingDeps } from "../../../src/coordinator/scheduler-binding.js";
import { defaultCatalog } from "../../../src/models/catalog.js";
import { ProviderRegistry } from "../../../src/registry/provider-registry.js";
import { resolveSchedulerOptions } from "../../../src/scheduler/scheduler-options.js";
import type { PickResult, RouteRequest } from "../../../src/scheduler/types.js";
import { FakeClock } from "../../../src/util/clock.js";
import { MODEL, heartbeat, registration, slot } from "../registry/fixtures.js";
import { fixedEstimator, healthy } from "../scheduler/fixtures.js";

const req = (o: Partial<RouteRequest> = {}): RouteRequest => ({
  requestId: "r1",
  model: MODEL,
  traits: { maxTokens: 500, estimatedPromptTokens: 100, hasTools: false, requiresVision: false, stream: true },
  shape: "base",
  exclude: new Set(),
  ...o,
});

const summary = (d: PickResult) =>
  d.kind === "picked" ? `picked ${d.providerId}` : d.kind === "queue" ? `queue ${d.reason}` : `reject ${d.code}`;

describe("bindScheduler ownerRoute", () => {
  let registry: ProviderRegistry;
  let ownerRoute: ReturnType<typeof bindScheduler>["ownerRoute"];
  beforeEach(() => {
    const clock = new FakeClock();
    registry = new ProviderRegistry();
    const deps: SchedulerBindingDeps = {
      registry,
      // ownerRoute reads the health gates only; pools and aliases are the other routes' business.
      health: healthy() as unknown as SchedulerBindingDeps["health"],
      estimator: fixedEstimator(400) as unknown as SchedulerBindingDeps["estimator"],
      catalog: defaultCatalog,
      options: resolveSchedulerOptions(),
      clock,
      random: () => 0,
      pools: {} as SchedulerBindingDeps["pools"],
      aliases: {} as SchedulerBindingDeps["aliases"],
      queueRetryAfterMs: () => 1000,
    };
    ownerRoute = bindScheduler(deps).ownerRoute;
    for (const [id, used] of [
      ["busy", 10_000],
      ["free", 0],
    ] as const) {
      registry.add(registration(id), clock.nowMs(), id);
      registry.applyHeartbeat(
        id,
        heartbeat([slot({ numRunning: used ? 8 : 0, tokenBudgetUsed: used })]),
        clock.nowMs(),
      );
    }
  });

  it("refuses a Mac this node does not hold", () => {
    const d = ownerRoute("nope", req());
    assert.equal(summary(d), "reject model_unavailable");
    assert.ok(d.kind === "reject");
    assert.match(d.message, /not connected here/);
  });

  it("answers for the one Mac asked about, never another with more room", () => {
    assert.equal(summary(ownerRoute("free", req())), "picked free");
    assert.equal(summary(ownerRoute("busy", req())), "queue all_busy");
  });

  it("counts this node's in-flight accounting on the Mac", () => {
    for (let i = 0; i < 8; i++)
      registry.addInflight("free", {
        requestId: `x${i}`,
        model: MODEL,
        reservedTokens: 600,
        usedTokens: 100,
        remainingOutputTokens: 500,
        startedAtMs: 0,
        seenByProvider: false,
      });
    assert.equal(summary(ownerRoute("free", req())), "queue all_busy");
  });
});
