/**
 * Model pools as data (scheduler/model-pools.ts, the pool gate in gates.ts). Each review finding of the
 * model-pools proposal (../shared/seeds/pr-model-pools.txt) that lives in the pure scheduler has a test named
 * after it; the findings about the HTTP edge and the live registry are in test/integration/model-pools.test.ts.
 */
import assert from "node:assert/strict";
import { ModelAliases } from "../../../src/models/model-aliases.js";
import { needsSeeding, pickInPools, poolsFor, seedPool, type PoolLoad } from "../../../src/scheduler/model-pools.js";
import type { PickContext } from "../../../src/scheduler/pick.js";
import { resolveSchedulerOptions } from "../../../src/scheduler/scheduler-options.js";
import type { PickResult, RouteRequest } from "../../../src/scheduler/types.js";
import { planWarmPool } from "../../../src/scheduler/warm-pool.js";
import { capacitySnapshot } from "../../../src/scheduler/capacity.js";
import {
  build,
  catalog,
  fixedEstimator,
  healthy,
  inflight,
  provider,
  request,
  slot,
  view,
  type ProviderOver,
} from "./fixtures.js";

const options = resolveSchedulerOptions();
const ctx = (over: Partial<PickContext> = {}): PickContext => ({
  nowMs: 1000,
  random: () => 0,
  health: healthy(),
  estimator: fixedEstimator(800),
  catalog,
  options,
  ...over,
});
const noAliases = new ModelAliases();

/** A provider that has heartbeated, assigned to `pool`. */
const member = (id: string, pool: string | undefined, over: ProviderOver = {}) =>
  provider(id, { pool, heartbeats: 1, ...over });
const warmOn = (model: string, over: Parameters<typeof slot>[1] = {}) => [slot(model, over)];
const inPools = (model: string, aliases = noAliases, over: Parameters<typeof request>[1] = {}): RouteRequest => ({
  ...request(model, over),
  pools: poolsFor(aliases, model),
});

function summary(r: PickResult): string {
  if (r.kind === "picked")
    return `${r.providerId}${r.cold ? " cold" : ""}${r.assignPool !== undefined ? ` assign:${r.assignPool}` : ""}`;
  if (r.kind === "queue") return `queue:${r.reason}`;
  return `reject:${r.code}`;
}

const load = (demand: Record<string, number> = {}, members: Record<string, number> = {}): PoolLoad => ({
  demandPerS: (p) => demand[p] ?? 0,
  members: (p) => members[p] ?? 0,
});

describe("model pools: routing (pickInPools and the pool gate)", () => {
  it("a gemma burst never lands on an oss-assigned Mac, even an idle warm one, while it is its pool's only one", () => {
    const v = view(
      member("oss-idle", "oss", { slots: warmOn("oss") }),
      member("gemma-full", "gemma", {
        slots: warmOn("gemma", { numRunning: 16, state: "running" }),
        inflight: Array.from({ length: 16 }, (_, i) => inflight(`r${i}`, "gemma")),
      }),
    );
    const r = pickInPools(v, inPools("gemma"), ctx());
    assert.equal(summary(r), "queue:pool_exhausted");
  });

  it("waits (not pool_exhausted) while a Mac advertising the model has no pool yet (a fleet still connecting)", () => {
    const busyGemma = {
      slots: warmOn("gemma", { numRunning: 16, state: "running" as const }),
      inflight: Array.from({ length: 16 }, (_, i) => inflight(`r${i}`, "gemma")),
    };
    const seeding = view(
      member("oss-idle", "oss", { slots: warmOn("oss") }),
      member("gemma-full", "gemma", busyGemma),
      provider("just-connected", { models: [build("gemma")] }),
    );
    assert.equal(summary(pickInPools(seeding, inPools("gemma"), ctx())), "queue:all_busy");
    // Once it has heartbeated into another pool (and is serving it), the same state is exhausted.
    const seeded = view(
      member("oss-idle", "oss", { slots: warmOn("oss") }),
      member("gemma-full", "gemma", busyGemma),
      member("just-connected", "oss", {
        models: [build("gemma")],
        slots: warmOn("oss", { state: "running", numRunning: 1 }),
        inflight: [inflight("j1", "oss")],
      }),
    );
    assert.equal(summary(pickInPools(seeded, inPools("gemma"), ctx())), "queue:pool_exhausted");
  });

  it("serves from the pool's own members first", () => {
    const v = view(
      member("oss-warm", "oss", { slots: warmOn("oss") }),
      member("gemma-warm", "gemma", { slots: warmOn("gemma") }),
    );
    assert.equal(summary(pickInPools(v, inPools("gemma"), ctx())), "gemma-warm");
  });

  it("reassigns an idle, unloaded Mac of another pool to a starved pool (the pick names the new pool)", () => {
    const v = view(member("oss-empty", "oss"), member("oss-warm", "oss", { slots: warmOn("oss") }));
    assert.equal(summary(pickInPools(v, inPools("gemma"), ctx())), "oss-empty cold assign:gemma");
  });

  it("never reassigns a Mac with a request in flight, a load pending, or its pool's last idle loaded model (review: keep pending loads pinned to their pool)", () => {
    const v = view(
      member("busy", "oss", { inflight: [inflight("r1", "oss")] }),
      member("resident", "oss", { slots: warmOn("oss") }),
      member("reported-warm", "oss", { warmModels: ["oss"] }),
      member("loading", "oss", { pendingLoads: [["oss", 900]] }),
      member("loading-slot", "oss", { slots: warmOn("oss", { state: "loading" }) }),
      member("draining", "oss", { status: "draining" }),
    );
    assert.equal(summary(pickInPools(v, inPools("gemma"), ctx())), "queue:pool_exhausted");
  });

  it("a load under way in the pool does not stop an idle, empty Mac from joining it (simulator finding: a burst needs more than one Mac)", () => {
    const full = slot("gemma", { numRunning: 16, maxConcurrency: 16, tokenBudgetUsed: 150_000 });
    // The load has already taken as many requests as a loading slot may.
    const joined = Array.from({ length: options.fallbackMaxConcurrency }, (_, i) => inflight(`r${i}`, "gemma"));
    const loading = () => member("gemma-loading", "gemma", { pendingLoads: [["gemma", 900]], inflight: joined });
    const v = view(member("gemma-busy", "gemma", { slots: [full] }), loading(), member("oss-empty", "oss"));
    assert.equal(summary(pickInPools(v, inPools("gemma"), ctx())), "oss-empty cold assign:gemma");
    const noSpare = view(
      member("gemma-busy", "gemma", { slots: [full] }),
      loading(),
      member("oss-warm", "oss", { slots: warmOn("oss") }),
    );
    assert.equal(
      summary(pickInPools(noSpare, inPools("gemma"), ctx())),
      "queue:loading",
      "nothing to move: wait for the pool's own load, not pool_exhausted",
    );
  });

  it("takes an idle Mac with another model loaded from a pool that keeps another one, never that pool's last or a busy one", () => {
    const full = () =>
      member("gemma-full", "gemma", {
        slots: warmOn("gemma", { numRunning: 16, state: "running" }),
        inflight: Array.from({ length: 16 }, (_, i) => inflight(`r${i}`, "gemma")),
      });
    const busyOss = () =>
      member("oss-busy", "oss", {
        slots: warmOn("oss", { state: "running", numRunning: 1 }),
        inflight: [inflight("o1", "oss")],
      });
    const idleOss = (id: string) => member(id, "oss", { slots: warmOn("oss") });
    // Two idle oss Macs: one may go (its oss is evicted for the gemma load); the pool keeps the other.
    const two = view(full(), busyOss(), idleOss("oss-a"), idleOss("oss-b"));
    assert.match(summary(pickInPools(two, inPools("gemma"), ctx())), /^oss-[ab] cold assign:gemma$/);
    // One idle oss Mac: it is the oss pool's ready Mac and stays; the gemma request hears pool_exhausted.
    const one = view(full(), busyOss(), idleOss("oss-a"));
    assert.equal(summary(pickInPools(one, inPools("gemma"), ctx())), "queue:pool_exhausted");
    // A member that could not serve its own pool's next request is not its "other" ready Mac: with one of these
    // beside oss-a, oss-a is still the last, and stays.
    const notReady: [string, ProviderOver][] = [
      ["draining", { status: "draining" }],
      ["overheating", { thermal: "critical" }],
      ["loading", { slots: [slot("oss"), slot("gemma", { state: "loading" })] }],
      ["load-pending", { pendingLoads: [["gemma", 900]] }],
      ["waiting", { slots: warmOn("oss", { numWaiting: 1 }) }],
    ];
    for (const [id, over] of notReady) {
      const v = view(full(), busyOss(), idleOss("oss-a"), member(id, "oss", { slots: warmOn("oss"), ...over }));
      assert.equal(summary(pickInPools(v, inPools("gemma"), ctx())), "queue:pool_exhausted", id);
    }
    // Only when the pool is full: a gemma member with room serves first.
    const room = view(member("gemma-idle", "gemma", { slots: warmOn("gemma") }), idleOss("oss-a"), idleOss("oss-b"));
    assert.equal(summary(pickInPools(room, inPools("gemma"), ctx())), "gemma-idle");
  });

  it("prefers the pool's cold member over reassigning another pool's Mac", () => {
    const v = view(member("oss-empty", "oss"), member("gemma-empty", "gemma"));
    assert.equal(summary(pickInPools(v, inPools("gemma"), ctx())), "gemma-empty cold");
  });

  it("queues (not pool_exhausted) when the whole fleet is busy: nothing is kept apart", () => {
    const full = (id: string, pool: string, model: string) =>
      member(id, pool, {
        models: [build(model)],
        slots: warmOn(model, { numRunning: 16, state: "running" }),
        inflight: Array.from({ length: 16 }, (_, i) => inflight(`${id}${i}`, model)),
      });
    const v = view(full("g", "gemma", "gemma"), full("o", "oss", "oss"));
    assert.equal(summary(pickInPools(v, inPools("gemma"), ctx())), "queue:all_busy");
  });

  it("waits for a Mac's first heartbeat instead of calling the pool exhausted (review: don't assign pools before the first heartbeat)", () => {
    const v = view(provider("fresh", { heartbeats: 0 }));
    assert.equal(summary(pickInPools(v, inPools("gemma"), ctx())), "queue:all_busy");
  });

  it("keeps a capability gap a 503 inside a pool (review: preserve tool and vision capability errors within pools)", () => {
    // The gemma pool's only member has a text-only build; another pool's Mac has vision but is pinned (resident).
    const v = view(
      member("gemma-text", "gemma", { models: [build("gemma", { isVision: false })], slots: warmOn("gemma") }),
      member("oss-with-vision-gemma", "oss", { slots: warmOn("oss") }),
    );
    const r = pickInPools(v, inPools("gemma", noAliases, { requiresVision: true }), ctx());
    assert.equal(summary(r), "reject:model_unavailable");
    assert.match(r.kind === "reject" ? r.message : "", /vision/);
  });

  it("a capability gap across the whole fleet is a 503, not pool_exhausted", () => {
    const v = view(
      member("oss-text", "oss", { models: [build("gemma", { isVision: false }), build("oss")], slots: warmOn("oss") }),
    );
    assert.equal(
      summary(pickInPools(v, inPools("gemma", noAliases, { requiresVision: true }), ctx())),
      "reject:model_unavailable",
    );
  });

  it("reassigns an idle Mac that has the capability the pool lacks", () => {
    const v = view(
      member("gemma-text", "gemma", { models: [build("gemma", { isVision: false })], slots: warmOn("gemma") }),
      member("oss-empty-vision", "oss"),
    );
    assert.equal(
      summary(pickInPools(v, inPools("gemma", noAliases, { requiresVision: true }), ctx())),
      "oss-empty-vision cold assign:gemma",
    );
  });

  it("keeps shared alias builds routable in each owning pool (review finding)", () => {
    // "shared" is alias a's previous build and alias b's desired build.
    const aliases = new ModelAliases([
      { alias: "a", build: "gemma", previousBuild: "oss" },
      { alias: "b", build: "oss" },
    ]);
    const v = view(
      member("in-a", "a", { slots: warmOn("oss") }),
      member("in-b", "b", { slots: warmOn("oss"), accountId: "acct-2" }),
    );
    // Alias a's rollout fallback (its previous build, oss) is served by a's own member; alias b's by b's.
    assert.equal(summary(pickInPools(v, { ...request("oss"), pools: poolsFor(aliases, "a") }, ctx())), "in-a");
    assert.equal(summary(pickInPools(v, { ...request("oss"), pools: poolsFor(aliases, "b") }, ctx())), "in-b");
    // A request naming the shared build itself may use either owning pool.
    assert.deepEqual([...poolsFor(aliases, "oss").keys].sort(), ["a", "b"]);
  });

  it("pools off (no constraint) is exactly the pool-less pick (the kill switch)", () => {
    const v = view(member("oss-warm-with-gemma-room", "oss", { slots: warmOn("oss"), maxModelSlots: 2 }));
    const r = pickInPools(v, request("gemma"), ctx());
    assert.equal(summary(r), "oss-warm-with-gemma-room cold");
  });

  it("lets a multi-slot member cold-load the desired build beside a busy previous one (review: don't block cold loads into free multi-slot capacity)", () => {
    const aliases = new ModelAliases([{ alias: "pub", build: "gemma", previousBuild: "oss" }]);
    const v = view(
      member("two-slots", "pub", {
        maxModelSlots: 2,
        totalMemoryGb: 128,
        slots: warmOn("oss", { numRunning: 1, state: "running" }),
        inflight: [inflight("r1", "oss")],
      }),
    );
    assert.equal(
      summary(pickInPools(v, { ...request("gemma"), pools: poolsFor(aliases, "pub") }, ctx())),
      "two-slots cold",
    );
  });

  it("does not send a cold build to a single-slot member busy with the previous build (review: keep slot defaults aligned with cold dispatch)", () => {
    const aliases = new ModelAliases([{ alias: "pub", build: "gemma", previousBuild: "oss" }]);
    const v = view(
      member("one-slot", "pub", {
        maxModelSlots: 1,
        slots: warmOn("oss", { numRunning: 1, state: "running" }),
        inflight: [inflight("r1", "oss")],
      }),
    );
    const r = pickInPools(v, { ...request("gemma"), pools: poolsFor(aliases, "pub") }, ctx());
    assert.notEqual(r.kind, "picked");
  });
});

describe("model pools: seeding (seedPool, needsSeeding)", () => {
  it("seeds from what is resident, never from the order models are advertised in (review: defer advertised-only seeding until after heartbeat)", () => {
    // Advertises gemma first, has oss loaded.
    const p = member("m", undefined, { models: [build("gemma"), build("oss")], slots: warmOn("oss") });
    assert.equal(seedPool(p, noAliases, load({ gemma: 5 })), "oss");
  });

  it("a pending load counts as resident", () => {
    const p = member("m", undefined, { pendingLoads: [["gemma", 0]] });
    assert.equal(seedPool(p, noAliases, load({ oss: 5 })), "gemma");
  });

  it("does not seed before the first heartbeat (review: don't assign pools before the first heartbeat)", () => {
    assert.equal(needsSeeding(provider("m", { heartbeats: 0 }), noAliases), false);
    assert.equal(needsSeeding(provider("m", { heartbeats: 1 }), noAliases), true);
  });

  it("reseeds an idle Mac whose own warm load shows only after the heartbeat that seeded it, and never a busy one", () => {
    const seededEmpty = member("m", "gemma", { models: [build("gemma"), build("oss")] });
    assert.equal(needsSeeding(seededEmpty, noAliases), false, "nothing held: the seeded pool stands");
    const loadingOwn = member("m", "gemma", {
      models: [build("gemma"), build("oss")],
      slots: warmOn("oss", { state: "loading" }),
    });
    assert.equal(needsSeeding(loadingOwn, noAliases), true);
    assert.equal(seedPool(loadingOwn, noAliases, load({ gemma: 9 })), "oss", "by residency, whatever the demand");
    const busy = member("m", "gemma", {
      models: [build("gemma"), build("oss")],
      slots: warmOn("oss"),
      inflight: [inflight("r1", "gemma")],
    });
    assert.equal(needsSeeding(busy, noAliases), false, "a request in flight pins the pool");
    const inPool = member("m", "gemma", {
      models: [build("gemma"), build("oss")],
      slots: [slot("oss"), slot("gemma")],
    });
    assert.equal(needsSeeding(inPool, noAliases), false, "one of its builds serves its pool");
  });

  it("seeds pools by pool key, not raw model count (review finding): an alias's two builds are one pool", () => {
    const aliases = new ModelAliases([{ alias: "pub", build: "gemma", previousBuild: "oss" }]);
    const p = member("m", undefined, { models: [build("gemma"), build("oss")] });
    assert.equal(seedPool(p, aliases, load()), "pub");
  });

  it("assigns a pool when advertised models are unrelated (review finding): never left unassigned", () => {
    const p = member("m", undefined, { models: [build("gemma"), build("oss")] });
    assert.ok(["gemma", "oss"].includes(seedPool(p, noAliases, load())!));
  });

  it("balances by demand per member when nothing is resident", () => {
    const p = member("m", undefined);
    assert.equal(seedPool(p, noAliases, load({ gemma: 2, oss: 1 }, { gemma: 3, oss: 0 })), "oss"); // 2/4 < 1/1
    assert.equal(seedPool(p, noAliases, load({ gemma: 9, oss: 1 }, { gemma: 3, oss: 0 })), "gemma"); // 9/4 > 1/1
  });

  it("distributes identical idle multi-model Macs across their pools (review: lexicographic starvation)", () => {
    const members: Record<string, number> = {};
    for (let i = 0; i < 20; i++) {
      const pool = seedPool(member(`mac-${i}`, undefined), noAliases, load({}, members))!;
      members[pool] = (members[pool] ?? 0) + 1;
    }
    assert.deepEqual(members, { gemma: 10, oss: 10 });
  });

  it("avoids pinning shared builds to the first alias (review finding): demand decides between owning aliases", () => {
    const aliases = new ModelAliases([
      { alias: "a", build: "oss" },
      { alias: "b", build: "gemma", previousBuild: "oss" },
    ]);
    const p = member("m", undefined, { models: [build("oss")], slots: warmOn("oss") });
    assert.equal(seedPool(p, aliases, load({ b: 3 })), "b");
    assert.equal(seedPool(p, aliases, load({ a: 3 })), "a");
  });

  it("recomputes alias-seeded pools after alias removal (review finding)", () => {
    const before = new ModelAliases([{ alias: "pub", build: "gemma" }]);
    const after = new ModelAliases([]);
    const p = member("m", "pub", { models: [build("gemma")] });
    assert.equal(needsSeeding(p, before), false);
    assert.equal(needsSeeding(p, after), true);
    assert.equal(seedPool(p, after, load()), "gemma");
  });
});

describe("model pools: warm pool and capacity", () => {
  it("filters warm-pool candidates before load_model (review finding): only the model's pool receives loads", () => {
    const v = view(
      // The fastest idle Mac is in the oss pool; the gemma pool's is slower.
      member("oss-fast", "oss", { decodeTps: 90, totalMemoryGb: 128 }),
      member("gemma-slow", "gemma", { decodeTps: 30 }),
    );
    const plan = planWarmPool(
      v,
      new Map([["gemma", { arrivalRatePerS: 1, meanServiceMs: 40_000, queueDepth: 0, pressurePerS: 0 }]]),
      0,
      {
        scheduler: options,
        catalog,
        health: healthy(),
        poolsOf: (m) => noAliases.resolve(m).pools,
      },
    );
    assert.deepEqual(plan.load, [{ providerId: "gemma-slow", model: "gemma" }]);
  });

  it("never pools a private machine, never plans public warm loads onto it, and leaves it out of public capacity", () => {
    const priv = member("priv", undefined, {
      privateOnly: true,
      decodeTps: 90,
      totalMemoryGb: 128,
      slots: warmOn("gemma"),
    });
    assert.equal(needsSeeding(priv, noAliases), false);
    const v = view(
      member("priv-idle", undefined, { privateOnly: true, decodeTps: 90, totalMemoryGb: 128 }),
      member("pub", "gemma", { decodeTps: 30 }),
    );
    for (const poolsOf of [undefined, (m: string) => noAliases.resolve(m).pools]) {
      const plan = planWarmPool(
        v,
        new Map([["gemma", { arrivalRatePerS: 1, meanServiceMs: 40_000, queueDepth: 0, pressurePerS: 0 }]]),
        0,
        {
          scheduler: options,
          catalog,
          health: healthy(),
          ...(poolsOf ? { poolsOf } : {}),
        },
      );
      assert.deepEqual(plan.load, [{ providerId: "pub", model: "gemma" }]);
    }
    const snap = capacitySnapshot(
      view(priv, member("pub", "gemma", { slots: warmOn("gemma") })),
      new Map(),
      catalog,
      0,
      {},
    );
    assert.equal(snap.models.find((m) => m.id === "gemma")!.routable_providers, 1);
  });

  it("a request routed by its caller fails fast when none of its machines is connected", () => {
    const pinned = pickInPools(view(), { ...request("gemma"), pinnedAccountId: "acct-9" }, ctx());
    assert.equal(summary(pinned), "reject:model_unavailable");
    assert.match((pinned as { message: string }).message, /none of your own machines/);
    const serials = pickInPools(
      view(member("a", "gemma", { serial: "S-1", slots: warmOn("gemma") })),
      { ...request("gemma"), allowedSerials: new Set(["S-9"]) },
      ctx(),
    );
    assert.equal(summary(serials), "reject:model_unavailable");
    assert.match((serials as { message: string }).message, /provider_serials/);
    assert.equal(
      summary(pickInPools(view(), request("gemma"), ctx())),
      "queue:all_busy",
      "a public request for a known model still waits for a Mac",
    );
  });

  it("gives an alias one capacity row over its builds and its pool, each Mac once, and no rows for the builds", () => {
    const aliases = new ModelAliases([{ alias: "pub", build: "gemma", previousBuild: "oss" }]);
    const v = view(
      member("new", "pub", {
        slots: warmOn("gemma", { numRunning: 2 }),
        inflight: [inflight("r1", "gemma"), inflight("r2", "gemma")],
      }),
      member("old", "pub", { slots: warmOn("oss") }),
      member("both-cold", "pub"),
      member("elsewhere", "other", { models: [build("gemma"), build("qwen")], slots: warmOn("qwen") }),
    );
    const snap = capacitySnapshot(
      v,
      new Map([
        ["gemma", 2],
        ["oss", 1],
      ]),
      catalog,
      0,
      { poolsOf: (m) => aliases.resolve(m).pools, aliases },
    );
    assert.deepEqual(
      snap.models.map((m) => m.id),
      ["offline-model", "pub", "qwen"],
      "the alias replaces its builds",
    );
    const pub = snap.models.find((m) => m.id === "pub")!;
    assert.deepEqual(
      {
        routable: pub.routable_providers,
        warm: pub.warm_providers,
        cold: pub.cold_providers,
        active: pub.active_requests,
        queued: pub.queued_requests,
      },
      { routable: 3, warm: 2, cold: 1, active: 2, queued: 3 },
    );
  });

  it("counts only the model's pool in the capacity snapshot", () => {
    const v = view(
      member("g", "gemma", { slots: warmOn("gemma") }),
      member("o", "oss", { slots: warmOn("oss") }),
      member("o2", "oss"),
    );
    const snap = capacitySnapshot(v, new Map(), catalog, 0, { poolsOf: (m) => noAliases.resolve(m).pools });
    const row = (id: string) => snap.models.find((m) => m.id === id)!;
    assert.equal(row("gemma").routable_providers, 1);
    assert.equal(row("oss").routable_providers, 2);
  });
});
