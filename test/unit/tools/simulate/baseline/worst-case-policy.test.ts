import assert from "node:assert/strict";
import { pick, type PickContext } from "../../../../../src/scheduler/pick.js";
import { resolveSchedulerOptions } from "../../../../../src/scheduler/scheduler-options.js";
import type { PickResult } from "../../../../../src/scheduler/types.js";
import { GoWarmPool } from "../../../../../src/tools/simulate/baseline/worst-case-warm-pool.js";
import { worstCaseColdAdmits, worstCasePolicy } from "../../../../../src/tools/simulate/baseline/worst-case-policy.js";
import {
  catalog,
  fixedEstimator,
  GB,
  healthy,
  inflight,
  provider,
  request,
  slot,
  view,
} from "../../../scheduler/fixtures.js";

const worst = resolveSchedulerOptions({ policy: worstCasePolicy });
const ours = resolveSchedulerOptions();

function ctx(options = worst): PickContext {
  return {
    nowMs: 1000,
    random: () => 0,
    health: healthy(),
    estimator: fixedEstimator(800),
    catalog,
    options,
    retryAfterMs: 7000,
  };
}

function summary(r: PickResult): string {
  if (r.kind === "picked") return `${r.providerId}${r.cold ? " cold" : ""} reserved=${r.reservedTokens}`;
  if (r.kind === "queue") return `queue:${r.reason}`;
  return `reject:${r.code}`;
}

describe("worst-case policy (the Go coordinator, for the simulator)", () => {
  it("reserves prompt + the full max_tokens against the slot's budget", () => {
    const v = view(provider("a", { slots: [slot("gemma", { tokenBudgetMax: 150_000 })] }));
    assert.equal(
      summary(pick(v, request("gemma", { maxTokens: 32_768, estimatedPromptTokens: 1000 }), ctx())),
      "a reserved=33768",
    );
  });

  it("counts every in-flight request at its full reservation, so a 32k request finds the slot full", () => {
    // 4 × 33,768 reserved of 150,000: a fifth does not fit although the provider holds only 4 × 1,500 tokens.
    const busy = Array.from({ length: 4 }, (_, i) =>
      inflight(`r${i}`, "gemma", { reservedTokens: 33_768, usedTokens: 1500 }),
    );
    const a = provider("a", {
      slots: [slot("gemma", { state: "running", numRunning: 4, tokenBudgetUsed: 6000 })],
      inflight: busy,
    });
    const cold = provider("cold", { totalMemoryGb: 128 });
    const req = request("gemma", { maxTokens: 32_768 });
    // Queue-before-shed: the only warm provider is full and no Mac is idle, so the request waits.
    assert.equal(summary(pick(view(a), req, ctx())), "queue:all_busy");
    // With an idle Mac the full slot is skipped and the idle one loads the model (cold, at the state penalty).
    assert.equal(summary(pick(view(a, cold), req, ctx())), "cold cold reserved=33768");
    // Our policy reserves the expected output and admits it on the same slot.
    assert.equal(summary(pick(view(a, cold), req, ctx(ours))), "a reserved=1800");
  });

  it("uses a flat 400 kB/token when the slot reports no budget", () => {
    // 64 GB: min(57.6, 60) GiB usable - 16 GB weights ≈ 42.7 GiB ÷ 400 kB ≈ 114k tokens: three 33.8k requests fit, not four.
    const busy = Array.from({ length: 3 }, (_, i) =>
      inflight(`r${i}`, "gemma", { reservedTokens: 33_768, usedTokens: 1500 }),
    );
    const a = provider("a", {
      slots: [slot("gemma", { state: "running", numRunning: 3, tokenBudgetMax: 0, tokenBudgetUsed: 0 })],
      inflight: busy,
    });
    assert.equal(summary(pick(view(a), request("gemma", { maxTokens: 32_768 }), ctx())), "queue:all_busy");
    assert.equal(summary(pick(view(a), request("gemma", { maxTokens: 512 }), ctx())), "a reserved=1512");
  });

  it("weighs an idle cold Mac at the 30 s state penalty: stacks on a warm Mac until its queue and backlog cost more", () => {
    // Go's backlog is the max_tokens of every request in flight on the slot (the provider's max_tokens_potential),
    // however much of it they have generated.
    const warm = (n: number, maxTokens: number) =>
      provider("warm", {
        slots: [slot("gemma", { state: "running", numRunning: n })],
        inflight: Array.from({ length: n }, (_, i) =>
          inflight(`r${i}`, "gemma", {
            promptTokens: 1000,
            reservedTokens: 1000 + maxTokens,
            remainingOutputTokens: 10,
          }),
        ),
      });
    const req = request("gemma", { maxTokens: 512 });
    // 2 running with 100-token budgets: 6 s queue + 1.5 s pending + 4.4 s backlog < the 30 s penalty.
    assert.equal(summary(pick(view(warm(2, 100), provider("idle")), req, ctx())), "warm reserved=1512");
    // 2 running with 1,000-token budgets, 10 tokens left each: 6 s + 1.5 s + 44 s backlog > 30 s, so the idle Mac
    // loads the model.
    assert.equal(summary(pick(view(warm(2, 1000), provider("idle")), req, ctx())), "idle cold reserved=1512");
  });

  it("cold-dispatches onto an idle Mac, never one busy with another model", () => {
    const busyOther = provider("busy", {
      slots: [slot("oss", { state: "running", numRunning: 1 })],
      inflight: [inflight("x", "oss")],
    });
    assert.equal(summary(pick(view(busyOther, provider("idle")), request("gemma"), ctx())), "idle cold reserved=5096");
  });

  it("queues behind a load under way when no other Mac is idle", () => {
    const loading = provider("l", { slots: [slot("gemma", { state: "loading" })] });
    const busyOther = provider("busy", {
      slots: [slot("oss", { state: "running", numRunning: 1 })],
      inflight: [inflight("x", "oss")],
    });
    assert.equal(summary(pick(view(loading, busyOther), request("gemma"), ctx())), "queue:loading");
    // An idle Mac is a cold candidate in the same scan (§3.4), so Go starts a second load rather than wait.
    assert.equal(summary(pick(view(loading, provider("idle")), request("gemma"), ctx())), "idle cold reserved=5096");
  });

  it("applies the 2x gate, so a legacy 32 GB Mac is sent a gemma load its own 3x rule refuses (Issue 4)", () => {
    const legacy32 = provider("m32", { totalMemoryGb: 32, freeForLoadGb: undefined });
    assert.equal(worstCaseColdAdmits(legacy32, 16 * GB, 1024), true);
    assert.equal(summary(pick(view(legacy32), request("gemma", { maxTokens: 512 }), ctx())), "m32 cold reserved=1512");
    assert.equal(
      summary(pick(view(legacy32), request("gemma", { maxTokens: 512 }), ctx(ours))),
      "reject:model_unavailable",
    );
    // A provider reporting free_for_load_gb is judged by it (catalog GB × 1.2 in GiB).
    assert.equal(
      worstCaseColdAdmits(provider("new32", { totalMemoryGb: 32, freeForLoadGb: 12.8 }), 16 * GB, 1024),
      false,
    );
  });

  it("Go warm pool: sizes the target from running + queued + spill EWMA with E[S] for 512/256 tokens, and loads only idle Macs", () => {
    const pool = new GoWarmPool();
    const running = Array.from({ length: 12 }, (_, i) => inflight(`r${i}`, "gemma", { seenByProvider: false }));
    const warmMac = provider("w", { slots: [slot("gemma", { state: "running", numRunning: 0 })], inflight: running });
    const idle = ["i1", "i2", "i3", "i4", "i5"].map((id) => provider(id));
    const busy = provider("b", {
      slots: [slot("oss", { state: "running", numRunning: 2 })],
      inflight: [inflight("o", "oss")],
    });
    for (let i = 0; i < 10; i++) pool.recordSpill("gemma");
    const plan = pool.plan(view(warmMac, busy, ...idle), 0, {
      scheduler: worst,
      catalog,
      health: healthy(),
      queueDepth: () => 3,
    });
    const t = plan.targets.get("gemma")!;
    // L = 12 active + 3 queued + 0.3 × (10 / 10 s) × E[S] (512/400 + 256/45 ≈ 7.0 s) ≈ 17.1; q = 8 at
    // 45 tok/s; target = ⌈17.1 / 8⌉ + 1 = 4.
    assert.equal(t.warm, 1);
    assert.equal(t.target, 4);
    const gemmaLoads = plan.load.filter((l) => l.model === "gemma").map((l) => l.providerId);
    assert.deepEqual(gemmaLoads.sort(), ["i1", "i2", "i3"]);
    // oss: 2 running on the busy Mac → target ⌈2 / 8⌉ + 1 = 2 → one more idle Mac; never the busy one.
    assert.deepEqual(
      plan.load.filter((l) => l.model === "oss").map((l) => l.providerId),
      ["i4"],
    );
  });
});
