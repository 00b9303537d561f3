/**
 * Model pools end to end (issue 14, items 2–4): simulated Macs over real gRPC, a real coordinator and
 * PostgreSQL. Each Mac is seeded into one pool from what it holds at its first heartbeat; a burst for one model
 * never spills onto another pool's Macs; an idle, unloaded Mac is reassigned to a starved pool and serves, and so
 * is an idle one with another model loaded when its own pool keeps another such Mac; a Mac with a request in
 * flight, a load pending or its pool's last idle loaded model is never reassigned; a full pool answers an
 * uptime-neutral 429 `pool_exhausted` with Retry-After, and the same request succeeds once capacity returns; an
 * alias's previous build serves before that 429; a capability gap inside the pool is a fast 503; MODEL_POOLS=false
 * restores the pool-less policy; deleting an alias reseeds its Macs.
 */
import assert from "node:assert/strict";
import type { SimulatedMac } from "../../src/tools/fleet/simulated-mac.js";
import { adminCall } from "../support/coordinator-process.js";
import { startTestCoordinator, type TestCoordinator, type TestMacOptions } from "../support/coordinator.js";
import { eventually, postJson, type RawResponse } from "../support/http.js";

const GPT = "gpt-oss-20b";
const GEMMA = "gemma-4-26b";
const QWEN = "qwen3-8b";

/** A Mac whose answers take real time (about 150 tokens at its decode rate) and that runs one request at a time. */
const slow = (o: TestMacOptions): TestMacOptions => ({
  instant: false,
  timeScale: 1,
  maxConcurrency: 1,
  naturalTokens: { min: 150, max: 150 },
  diskGbs: 1000,
  ...o,
});

const poolOf = (t: TestCoordinator, mac: SimulatedMac) =>
  t.coordinator.registry.view().providers.find((p) => p.id === mac.providerId)?.pool;
/** Waits until the Mac is assigned `pool` (any pool when undefined): a Mac that loads its own warm models after its first heartbeat is seeded, then reseeded by what it holds once the load shows. */
const waitForPool = (t: TestCoordinator, mac: SimulatedMac, pool?: string) =>
  eventually(
    () => (pool === undefined ? poolOf(t, mac) !== undefined : poolOf(t, mac) === pool),
    10_000,
    `pool ${pool ?? "(any)"} for ${mac.serial}, has ${poolOf(t, mac)}`,
  );

const chat = (t: TestCoordinator, model: string, extra: Record<string, unknown> = {}): Promise<RawResponse> =>
  postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
    model,
    messages: [{ role: "user", content: "hello" }],
    max_tokens: 200,
    ...extra,
  });

const errorCode = (r: RawResponse) => (JSON.parse(r.text) as { error?: { code?: string } }).error?.code;

/** Starts `n` copies of `request` at once (each its own connection). */
const burst = (n: number, request: () => Promise<RawResponse>) => Promise.all(Array.from({ length: n }, request));

async function servedBy(t: TestCoordinator): Promise<Map<string, string | null>> {
  const rows = await t.db.db
    .selectFrom("ledger_requests")
    .select(["request_id", "provider_id"])
    .where("state", "=", "settled")
    .execute();
  return new Map(rows.map((r) => [r.request_id, r.provider_id]));
}

describe("model pools with simulated Macs", function () {
  this.timeout(60_000);
  let t: TestCoordinator | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it("a gpt-oss burst never lands on a gemma-assigned Mac: a full pool answers 429 pool_exhausted, and gemma traffic is untouched", async () => {
    t = await startTestCoordinator({ macs: [] });
    const both = [GPT, GEMMA];
    const gpt1 = await t.addMac(slow({ models: both, warmModels: [GPT], maxConcurrency: 2 }));
    const gpt2 = await t.addMac(slow({ models: both, warmModels: [GPT], maxConcurrency: 2 }));
    const gemma = await t.addMac(slow({ models: both, warmModels: [GEMMA], maxConcurrency: 2 }));
    // Seeded from what each holds, never from the order it advertises models in.
    await waitForPool(t, gpt1, GPT);
    await waitForPool(t, gpt2, GPT);
    await waitForPool(t, gemma, GEMMA);

    // The pool's four slots fill (these race each other and the admission checks), then a burst finds it full.
    const filling = burst(4, () => chat(t!, GPT));
    await eventually(
      () => gpt1.requestsReceived.length + gpt2.requestsReceived.length === 4,
      5_000,
      "the gpt-oss pool to be full",
    );
    const shed = await burst(6, () => chat(t!, GPT));
    for (const r of shed) {
      assert.equal(r.status, 429, r.text);
      assert.equal(errorCode(r), "pool_exhausted");
      assert.ok(Number(r.headers.get("retry-after")) >= 1, `Retry-After: ${r.headers.get("retry-after")}`);
    }
    assert.deepEqual(
      (await filling).map((r) => r.status),
      [200, 200, 200, 200],
    );
    assert.deepEqual(gemma.requestsReceived, [], "the gemma Mac never saw a gpt-oss request");
    const served = await servedBy(t);
    assert.equal(served.size, 4);
    assert.ok(
      [...served.values()].every((p) => p === gpt1.providerId || p === gpt2.providerId),
      "billed to the gpt-oss Macs only",
    );
    assert.equal(poolOf(t, gemma), GEMMA, "a resident Mac is never reassigned");

    // The gemma pool keeps serving its own model.
    const g = await chat(t, GEMMA);
    assert.equal(g.status, 200, g.text);
    assert.equal(gemma.requestsReceived.length, 1);
  });

  it("an idle, unloaded Mac is reassigned to a starved pool and serves the request", async () => {
    t = await startTestCoordinator({ macs: [] });
    const busy = await t.addMac(slow({ models: [GPT], warmModels: [GPT] }));
    await waitForPool(t, busy, GPT);
    const idle = await t.addMac(slow({ models: [GPT, GEMMA], warmModels: [] }));
    await waitForPool(t, idle);
    assert.equal(poolOf(t, idle), GEMMA, "nothing resident: seeded to the pool with fewer Macs per unit of demand");

    const first = chat(t, GPT);
    await eventually(() => busy.requestsReceived.length === 1, 5_000, "the first request on the gpt-oss Mac");
    const second = await chat(t, GPT);
    assert.equal(second.status, 200, second.text);
    assert.equal(idle.requestsReceived.length, 1, "the reassigned Mac served the second request");
    assert.equal(poolOf(t, idle), GPT);
    assert.equal((await first).status, 200);
  });

  it("an idle Mac with another model loaded moves to a full pool when its own pool keeps another idle one, and serves", async () => {
    t = await startTestCoordinator({ macs: [] });
    const both = [GPT, GEMMA];
    const gpt = await t.addMac(slow({ models: both, warmModels: [GPT] }));
    const gemmaA = await t.addMac(slow({ models: both, warmModels: [GEMMA] }));
    const gemmaB = await t.addMac(slow({ models: both, warmModels: [GEMMA] }));
    await waitForPool(t, gpt, GPT);
    await waitForPool(t, gemmaA, GEMMA);
    await waitForPool(t, gemmaB, GEMMA);

    const first = chat(t, GPT);
    await eventually(() => gpt.requestsReceived.length === 1, 5_000, "the gpt-oss pool to be full");
    // The gpt-oss pool is full; both gemma Macs sit idle with gemma loaded. One of them is taken (it loads gpt-oss);
    // the gemma pool keeps the other.
    const second = await chat(t, GPT);
    assert.equal(second.status, 200, second.text);
    const moved = [gemmaA, gemmaB].filter((m) => m.requestsReceived.length === 1);
    assert.equal(moved.length, 1, "exactly one gemma Mac served the gpt-oss request");
    assert.equal(poolOf(t, moved[0]!), GPT);
    const kept = moved[0] === gemmaA ? gemmaB : gemmaA;
    assert.equal(poolOf(t, kept), GEMMA, "the gemma pool keeps its last idle loaded Mac");
    assert.equal((await first).status, 200);

    // That last one is not taken: with both gpt-oss Macs busy, the next gpt-oss request is exhausted, and gemma
    // traffic is served at once by the Mac its pool kept.
    const holders = [chat(t, GPT), chat(t, GPT)];
    await eventually(
      () => gpt.requestsReceived.length === 2 && moved[0]!.requestsReceived.length === 2,
      10_000,
      "both gpt-oss Macs busy",
    );
    const refused = await chat(t, GPT);
    assert.equal(refused.status, 429, refused.text);
    assert.equal(errorCode(refused), "pool_exhausted");
    const g = await chat(t, GEMMA);
    assert.equal(g.status, 200, g.text);
    assert.equal(kept.requestsReceived.length, 1);
    assert.equal(poolOf(t, kept), GEMMA);
    for (const r of await Promise.all(holders)) assert.equal(r.status, 200, r.text);
  });

  it("never reassigns a Mac with a load pending or a model resident; 429 pool_exhausted, then 200 once capacity returns", async () => {
    t = await startTestCoordinator({ macs: [] });
    const gpt = await t.addMac(slow({ models: [GPT], warmModels: [GPT] }));
    await waitForPool(t, gpt, GPT);
    // A slow disk: its gemma load stays pending for about 4 s (16 GB at 4 GB/s).
    const loading = await t.addMac(slow({ models: [GPT, GEMMA], warmModels: [], diskGbs: 4 }));
    await waitForPool(t, loading);
    assert.equal(poolOf(t, loading), GEMMA, "nothing resident: seeded to the pool with no Mac yet");

    const gemmaRequest = chat(t, GEMMA);
    await eventually(
      () =>
        t!.coordinator.registry.view().providers.some((p) => p.id === loading.providerId && p.pendingLoads.size > 0),
      5_000,
      "the gemma load to be pending",
    );
    const holder = chat(t, GPT);
    await eventually(() => gpt.requestsReceived.length === 1, 5_000, "the gpt-oss Mac to be busy");

    // The loading Mac is not reassigned (nor could it take the request now), so the request waits for its pool.
    const waited = await chat(t, GPT);
    assert.equal(waited.status, 200, waited.text);
    assert.equal(gpt.requestsReceived.length, 2, "served by the gpt-oss Mac once it was free");
    assert.equal(poolOf(t, loading), GEMMA, "a Mac with a load pending stays pinned");
    assert.equal((await holder).status, 200);

    // gemma resident and idle: the Mac could take gpt-oss now, but it is pinned, so a full pool is exhausted.
    assert.equal((await gemmaRequest).status, 200);
    assert.deepEqual(loading.requestsReceived.length, 1, "only its own gemma request");
    const holder2 = chat(t, GPT);
    await eventually(() => gpt.requestsReceived.length === 3, 5_000, "the gpt-oss Mac to be busy again");
    const refused = await chat(t, GPT);
    assert.equal(refused.status, 429, refused.text);
    assert.equal(errorCode(refused), "pool_exhausted");
    const retryAfterS = Number(refused.headers.get("retry-after"));
    assert.ok(retryAfterS >= 1 && retryAfterS <= 60, `Retry-After ${retryAfterS}`);
    assert.equal(poolOf(t, loading), GEMMA, "a resident Mac stays pinned");
    assert.equal(loading.requestsReceived.length, 1);

    // Capacity returns when the holder finishes: the same request then succeeds, on the gpt-oss Mac.
    assert.equal((await holder2).status, 200);
    const retried = await chat(t, GPT);
    assert.equal(retried.status, 200, retried.text);
    assert.equal(gpt.requestsReceived.length, 4);
  });

  it("an alias's previous build serves before the pool is called exhausted; consumers see the alias, the ledger the build", async () => {
    t = await startTestCoordinator({ macs: [] });
    await adminCall(t.baseUrl, t.adminKey, "SetModelAlias", { alias: "chat", build: GEMMA, previousBuild: GPT });
    const desired = await t.addMac(slow({ models: [GEMMA], warmModels: [GEMMA] }));
    const previous = await t.addMac(slow({ models: [GPT], warmModels: [GPT] }));
    const other = await t.addMac(slow({ models: [GEMMA, QWEN], warmModels: [QWEN] }));
    await waitForPool(t, desired, "chat");
    await waitForPool(t, previous, "chat"); // the previous build's Macs are the alias's pool too
    await waitForPool(t, other, QWEN);

    const listed = (await (
      await fetch(`${t.apiBase}/models`, { headers: { authorization: `Bearer ${t.apiKey}` } })
    ).json()) as { data: { id: string }[] };
    const ids = listed.data.map((m) => m.id);
    assert.ok(ids.includes("chat"), `models: ${ids}`);
    assert.ok(!ids.includes(GEMMA) && !ids.includes(GPT), `an alias's builds are not listed: ${ids}`);
    const capacity = (await (await fetch(`${t.apiBase}/models/capacity`)).json()) as {
      models: { id: string; routable_providers: number; warm_providers: number }[];
    };
    const chatRow = capacity.models.find((m) => m.id === "chat");
    assert.deepEqual(
      chatRow && { routable: chatRow.routable_providers, warm: chatRow.warm_providers },
      { routable: 2, warm: 2 },
      "one row for the alias: both builds' Macs, not the other pool's",
    );
    assert.ok(!capacity.models.some((m) => m.id === GEMMA || m.id === GPT), "no rows for the builds behind the alias");

    const onDesired = chat(t, "chat");
    await eventually(() => desired.requestsReceived.length === 1, 5_000, "the desired build's Mac to be busy");
    const fallback = await chat(t, "chat", { stream: false });
    assert.equal(fallback.status, 200, fallback.text);
    assert.equal((JSON.parse(fallback.text) as { model: string }).model, "chat", "the response names the alias");
    assert.equal(previous.requestsReceived.length, 1, "the previous build served");
    assert.deepEqual(other.requestsReceived, [], "not the other pool's Mac, although it holds the desired build");
    const row = await t.db.db
      .selectFrom("ledger_requests")
      .select(["model", "provider_id"])
      .where("request_id", "=", previous.requestsReceived[0]!)
      .executeTakeFirstOrThrow();
    assert.deepEqual(row, { model: GPT, provider_id: previous.providerId! }, "billed as the build that served");

    // Both builds busy: now the pool is exhausted.
    const onPrevious = chat(t, "chat");
    await eventually(() => previous.requestsReceived.length === 2, 5_000, "the previous build's Mac to be busy");
    const refused = await chat(t, "chat");
    assert.equal(refused.status, 429, refused.text);
    assert.equal(errorCode(refused), "pool_exhausted");
    assert.ok(Number(refused.headers.get("retry-after")) >= 1);
    assert.deepEqual(
      (await Promise.all([onDesired, onPrevious])).map((r) => r.status),
      [200, 200],
    );
  });

  it("a vision request to a pool with no vision-capable build fails fast with 503, although another pool's Mac could take it", async () => {
    t = await startTestCoordinator({ macs: [] });
    const textOnly = await t.addMac({ models: [{ id: GEMMA, isVision: false }], warmModels: [GEMMA] });
    const offPool = await t.addMac({ models: [GPT, GEMMA], warmModels: [GPT] });
    await waitForPool(t, textOnly, GEMMA);
    await waitForPool(t, offPool, GPT);

    const started = Date.now();
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
      model: GEMMA,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "what is this?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
          ],
        },
      ],
      max_tokens: 20,
    });
    assert.equal(r.status, 503, r.text);
    assert.equal(errorCode(r), "model_unavailable", "a capability gap is not a retryable pool_exhausted");
    assert.match(r.text, /vision/);
    assert.ok(Date.now() - started < 2_000, "fails fast, without queueing");
    assert.deepEqual(offPool.requestsReceived, []);
    assert.deepEqual(textOnly.requestsReceived, []);
  });

  it("MODEL_POOLS=false is the kill switch: no pools, and the same vision request is served by the off-pool vision build", async () => {
    t = await startTestCoordinator({ macs: [], config: { modelPools: false } });
    const textOnly = await t.addMac({ models: [{ id: GEMMA, isVision: false }], warmModels: [GEMMA] });
    const both = await t.addMac({ models: [GPT, GEMMA], warmModels: [GPT] });
    await eventually(
      () => t!.coordinator.registry.view().providers.every((p) => (p.heartbeats ?? 0) >= 2),
      5_000,
      "heartbeats",
    );
    assert.deepEqual(
      t.coordinator.registry.view().providers.map((p) => p.pool),
      [undefined, undefined],
      "no Mac is assigned a pool",
    );

    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
      model: GEMMA,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "what is this?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
          ],
        },
      ],
      max_tokens: 20,
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(both.requestsReceived.length, 1, "served by the gpt-oss Mac's vision-capable gemma build");
    assert.deepEqual(textOnly.requestsReceived, []);
  });

  it("deleting an alias releases its Macs: each is reseeded from what it holds", async () => {
    t = await startTestCoordinator({ macs: [] });
    await adminCall(t.baseUrl, t.adminKey, "SetModelAlias", { alias: "chat", build: GEMMA });
    const resident = await t.addMac({ models: [GEMMA, QWEN], warmModels: [GEMMA] });
    await waitForPool(t, resident, "chat");

    await adminCall(t.baseUrl, t.adminKey, "DeleteModelAlias", { alias: "chat" });
    assert.equal(poolOf(t, resident), GEMMA, "reseeded at once, by residency");
    const r = await chat(t, GEMMA);
    assert.equal(r.status, 200, r.text);
    const gone = await chat(t, "chat");
    assert.equal(gone.status, 404, gone.text);
  });
});
