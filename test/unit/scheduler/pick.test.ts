import assert from "node:assert/strict";
import { pick, type PickContext } from "../../../src/scheduler/pick.js";
import { RequestQueue } from "../../../src/scheduler/request-queue.js";
import { resolveSchedulerOptions } from "../../../src/scheduler/scheduler-options.js";
import type { PickResult } from "../../../src/scheduler/types.js";
import { build, catalog, fixedEstimator, healthy, inflight, provider, request, slot, view } from "./fixtures.js";

function ctx(over: Partial<PickContext> = {}): PickContext {
  return {
    nowMs: 1000,
    random: () => 0,
    health: healthy(),
    estimator: fixedEstimator(800),
    catalog,
    options: resolveSchedulerOptions(),
    ...over,
  };
}

function summary(r: PickResult): string {
  if (r.kind === "picked") return `${r.providerId}${r.cold ? " cold" : ""}`;
  if (r.kind === "queue") return `queue:${r.reason}`;
  return `reject:${r.code}`;
}

const warm = (id: string, over: Parameters<typeof slot>[1] = {}, p: Parameters<typeof provider>[1] = {}) =>
  provider(id, { slots: [slot("gemma", over)], ...p });

describe("pick", () => {
  const table: {
    name: string;
    v: ReturnType<typeof view>;
    req: ReturnType<typeof request>;
    expect: string;
    c?: Partial<PickContext>;
  }[] = [
    {
      name: "rejects an unknown model with model_not_found",
      v: view(warm("a")),
      req: request("nope"),
      expect: "reject:model_not_found",
    },
    {
      name: "queues a catalog model with no provider connected",
      v: view(),
      req: request("offline-model"),
      expect: "queue:all_busy",
    },
    {
      name: "rejects a context overflow for an offline catalog model",
      v: view(),
      req: request("offline-model", { estimatedPromptTokens: 9000 }),
      expect: "reject:context_overflow",
    },
    {
      name: "rejects context_overflow when the prompt fits no connected build",
      v: view(warm("a")),
      req: request("gemma", { estimatedPromptTokens: 200_000 }),
      expect: "reject:context_overflow",
    },
    {
      name: "rejects model_unavailable when no vision build is connected",
      v: view(provider("a", { models: [build("gemma", { isVision: false })] })),
      req: request("gemma", { requiresVision: true }),
      expect: "reject:model_unavailable",
    },
    {
      name: "queues while every capable provider is draining",
      v: view(warm("a", {}, { status: "draining" })),
      req: request("gemma"),
      expect: "queue:all_busy",
    },
    {
      name: "prefers warm over a faster cold Mac",
      v: view(provider("cold", { totalMemoryGb: 128, decodeTps: 90 }), warm("w")),
      req: request("gemma"),
      expect: "w",
    },
    {
      name: "goes cold when the only warm slot is full",
      v: view(warm("w", { numRunning: 16, state: "running" }), provider("c", { totalMemoryGb: 64 })),
      req: request("gemma"),
      expect: "c cold",
    },
    {
      name: "never picks a cold Mac whose memory cannot hold the model",
      v: view(warm("w", { numRunning: 16, state: "running" }), provider("small", { totalMemoryGb: 32 })),
      req: request("gemma"),
      expect: "queue:all_busy",
    },
    {
      name: "picks a cold Mac that fits via freeForLoadGb",
      v: view(provider("f", { totalMemoryGb: 32, freeForLoadGb: 20 })),
      req: request("gemma"),
      expect: "f cold",
    },
    {
      name: "rejects model_unavailable when no connected Mac could ever load the model",
      v: view(provider("small", { totalMemoryGb: 24 })),
      req: request("gemma"),
      expect: "reject:model_unavailable",
    },
    {
      name: "rejects model_unavailable on a 48 GB Mac for 16 GB of weights (the provider's 3x rule on usable memory)",
      v: view(provider("m48", { totalMemoryGb: 48 })),
      req: request("gemma"),
      expect: "reject:model_unavailable",
    },
    {
      name: "picks a 64 GB Mac cold for the same model",
      v: view(provider("m64", { totalMemoryGb: 64 })),
      req: request("gemma"),
      expect: "m64 cold",
    },
    {
      name: "joins a load under way instead of loading another Mac",
      v: view(provider("l", { pendingLoads: [["gemma", 0]] }), provider("c")),
      req: request("gemma"),
      expect: "l",
    },
    {
      name: "does not route to an idle model the Mac is evicting for a load it was sent (one slot)",
      v: view(provider("e", { slots: [slot("oss")], pendingLoads: [["gemma", 0]] }), provider("c")),
      req: request("oss"),
      expect: "c cold",
    },
    {
      name: "routes to an idle model beside a load when the Mac has a slot for each",
      v: view(provider("e", { slots: [slot("oss")], pendingLoads: [["gemma", 0]], maxModelSlots: 2 }), provider("c")),
      req: request("oss"),
      expect: "e",
    },
    {
      name: "routes to a busy model beside a load (the Mac never evicts a busy one)",
      v: view(
        provider("e", { slots: [slot("oss", { state: "running", numRunning: 1 })], pendingLoads: [["gemma", 0]] }),
        provider("c"),
      ),
      req: request("oss"),
      expect: "e",
    },
    {
      name: "queues with reason loading when the loading Mac has its default concurrency already",
      v: view(
        provider("l", {
          pendingLoads: [["gemma", 0]],
          inflight: [1, 2, 3, 4].map((i) => inflight(`r${i}`, "gemma", { seenByProvider: false })),
        }),
      ),
      req: request("gemma"),
      expect: "queue:loading",
    },
    {
      name: "skips a cold Mac on load cooldown",
      v: view(provider("c")),
      req: request("gemma"),
      expect: "queue:all_busy",
      c: { health: healthy({ isLoadCooledDown: () => true }) },
    },
    {
      name: "picks the faster of two idle warm Macs",
      v: view(warm("slow", { observedDecodeTps: 25 }), warm("fast", { observedDecodeTps: 60 })),
      req: request("gemma"),
      expect: "fast",
    },
    {
      name: "spreads: prefers an empty warm Mac over one with a long backlog",
      v: view(
        warm(
          "busy",
          { numRunning: 3, state: "running" },
          { inflight: [1, 2, 3].map((i) => inflight(`r${i}`, "gemma", { remainingOutputTokens: 8000 })) },
        ),
        warm("empty"),
      ),
      req: request("gemma"),
      expect: "empty",
    },
    {
      name: "penalises thermal serious",
      v: view(warm("hot", {}, { thermal: "serious" }), warm("cool")),
      req: request("gemma"),
      expect: "cool",
    },
    {
      name: "penalises memory pressure",
      v: view(warm("pressed", {}, { memoryPressure: 0.9 }), warm("calm")),
      req: request("gemma"),
      expect: "calm",
    },
    {
      name: "avoids the failed version when another exists",
      v: view(warm("a", {}, { version: "0.7.0" }), warm("b", { observedDecodeTps: 30 }, { version: "0.7.1" })),
      req: request("gemma", { avoidVersion: "0.7.0" }),
      expect: "b",
    },
    {
      name: "still uses the avoided version when it is the only one",
      v: view(warm("a", {}, { version: "0.7.0" })),
      req: request("gemma", { avoidVersion: "0.7.0" }),
      expect: "a",
    },
  ];
  for (const t of table) it(t.name, () => assert.equal(summary(pick(t.v, t.req, ctx(t.c))), t.expect));

  it("reserves the prompt plus the expected output, not max_tokens", () => {
    const r = pick(view(warm("a")), request("gemma", { maxTokens: 32_768, estimatedPromptTokens: 1000 }), ctx());
    assert.equal(r.kind === "picked" && r.reservedTokens, 1800);
  });

  it("breaks near-ties randomly among equally loaded providers", () => {
    const v = view(warm("a"), warm("b"), warm("c"));
    assert.equal(summary(pick(v, request("gemma"), ctx({ random: () => 0 }))), "a");
    assert.equal(summary(pick(v, request("gemma"), ctx({ random: () => 0.99 }))), "c");
  });

  it("keeps cache affinity stable among near-best candidates", () => {
    const v = view(warm("a"), warm("b"), warm("c"), warm("d"));
    const first = pick(v, request("gemma", { affinityKey: "user-42" }), ctx({ random: () => 0 }));
    const again = pick(v, request("gemma", { affinityKey: "user-42" }), ctx({ random: () => 0.99 }));
    assert.equal(first.kind === "picked" && first.reason, "affinity");
    assert.equal(summary(again), summary(first));
  });

  describe("locality in a cluster", () => {
    const remote = (id: string, over: Parameters<typeof slot>[1] = {}) => warm(id, over, { remote: true });

    it("gives a near-tie to the Mac this process owns, whatever the random draw", () => {
      const v = view(remote("a"), warm("b"), remote("c"));
      for (const r of [0, 0.5, 0.99]) assert.equal(summary(pick(v, request("gemma"), ctx({ random: () => r }))), "b");
    });

    it("balances by load among the owned Macs, not across to a mirror", () => {
      const v = view(remote("a"), warm("b", { numRunning: 1, state: "running" }), warm("c"));
      assert.equal(summary(pick(v, request("gemma"), ctx({ random: () => 0 }))), "c");
    });

    it("forwards when every owned Mac is clearly worse than a mirrored one", () => {
      // Past the near-tie window (250 ms at least): the owned Mac is busy, the mirror idle.
      const v = view(remote("a"), warm("b", { numRunning: 15, state: "running" }));
      assert.equal(summary(pick(v, request("gemma", { maxTokens: 2048 }), ctx())), "a");
    });

    describe("the forward margin (a mirror must look clearly cheaper)", () => {
      // Two idle warm Macs, the mirror faster: its expected completion time is the owned Mac's ÷ `ratio`.
      const pair = (ratio: number) =>
        view(warm("a", { observedDecodeTps: 45 * ratio }, { decodeTps: 45 * ratio, remote: true }), warm("b"));
      const long = () => request("gemma", { maxTokens: 2048 });
      const withMargin = (m: number) => ctx({ options: resolveSchedulerOptions({ forwardMarginFraction: m }) });
      const costOf = (v: ReturnType<typeof view>, id: string) => {
        const r = pick(
          view(...v.providers.filter((p) => p.id === id).map((p) => ({ ...p, remote: false }))),
          long(),
          ctx(),
        );
        return r.kind === "picked" ? r.costMs : Number.NaN;
      };

      it("stays home while the owned Mac costs at most the margin more", () => {
        const v = pair(1.4);
        const gap = costOf(v, "b") / costOf(v, "a") - 1;
        assert.ok(gap > 0.3 && gap < 0.5, `owned Mac ${gap} dearer`); // past the near-tie window, within the margin
        for (const r of [0, 0.5, 0.99])
          assert.equal(summary(pick(v, long(), { ...withMargin(0.5), random: () => r })), "b");
        // At the boundary: a margin just above the gap stays home, just below it forwards.
        assert.equal(summary(pick(v, long(), withMargin(gap + 0.001))), "b");
        assert.equal(summary(pick(v, long(), withMargin(gap - 0.001))), "a");
      });

      it("forwards once the mirror is cheaper by more than the margin", () => {
        const v = pair(2);
        const gap = costOf(v, "b") / costOf(v, "a") - 1;
        assert.ok(gap > 0.5, `owned Mac only ${gap} dearer`);
        assert.equal(summary(pick(v, long(), withMargin(0.5))), "a");
        assert.equal(summary(pick(v, long(), withMargin(gap + 0.001))), "b");
      });

      it("leaves a request with a cache-affinity key to the plain near-tie rule", () => {
        // Past the near-tie window, within the margin: locality would keep it home; affinity never sees "b" as a tie.
        const v = pair(1.4);
        for (const key of ["user-1", "user-2", "user-3"])
          assert.equal(summary(pick(v, request("gemma", { maxTokens: 2048, affinityKey: key }), withMargin(0.5))), "a");
      });

      it("does not change a choice among owned Macs (one process)", () => {
        // The faster Mac listed second, so neither the order nor the random draw can pick it by accident.
        const v = view(warm("a"), warm("b", { observedDecodeTps: 63 }, { decodeTps: 63 }));
        for (const r of [0, 0.99]) assert.equal(summary(pick(v, long(), { ...withMargin(10), random: () => r })), "b");
      });
    });

    it("keeps cache affinity ahead of locality", () => {
      const ids = ["a", "b", "c", "d"];
      const mixed = view(...ids.map((id, i) => (i % 2 ? warm(id) : remote(id))));
      const plain = view(...ids.map((id) => warm(id)));
      const req = () => request("gemma", { affinityKey: "user-42" });
      assert.equal(summary(pick(mixed, req(), ctx())), summary(pick(plain, req(), ctx())));
      // The key lands on a mirror for at least one of these users, or the test proves nothing.
      const onMirror = ["user-1", "user-2", "user-3", "user-4", "user-5"].some(
        (k) => !["b", "d"].includes(summary(pick(mixed, request("gemma", { affinityKey: k }), ctx()))),
      );
      assert.ok(onMirror);
    });
  });

  it("drains a queued request once a new snapshot shows headroom", () => {
    const q = new RequestQueue<ReturnType<typeof request>>();
    const req = request("gemma");
    const full = view(warm("w", { numRunning: 16, state: "running" }));
    const first = pick(full, req, ctx());
    assert.equal(first.kind, "queue");
    q.enqueue("gemma", req.requestId, req, 1000);
    // Nothing changed: the head stays queued.
    assert.equal(pick(full, q.peek("gemma")!.item, ctx()).kind, "queue");
    // A heartbeat shows a finished request: the head is dispatched.
    const freed = view(warm("w", { numRunning: 15, state: "running" }));
    const r = pick(freed, q.peek("gemma")!.item, ctx({ nowMs: 5000 }));
    assert.equal(summary(r), "w");
    assert.equal(q.shift("gemma", 5000)?.id, req.requestId);
    assert.equal(q.depth("gemma"), 0);
  });
});
