/**
 * Routing constraints end to end (issue 14, item 5): simulated Macs over real gRPC, a real coordinator and
 * PostgreSQL.
 *
 * - `provider_serials` (body, any inference route): only the named machines serve, even among idle ones; it
 *   bypasses model pools; naming only unknown or disconnected machines is a fast 503 `model_unavailable`; a
 *   malformed list is a 400 with `param: "provider_serials"`; the field never reaches a Mac, on any dialect.
 * - `private_only` (Register): such a Mac serves its owner's account only, never another consumer, joins no
 *   model pool, and the warm-pool planner never loads a model onto it.
 * - `X-Route: self`: only the caller's own machines, priced at zero (a settled ledger row with the provider and
 *   tokens but zero debit and zero credit), answered with `x-route: self`; a caller owning no capable machine
 *   gets a fast 503. `X-Route: prefer`: the caller's own machine when it can take the request now (free), else
 *   a paid public machine (`x-route: public`). Any other X-Route value is a 400 `invalid_route`.
 *
 * Limits of what this proves: "never raced" for self-routed requests is not observable here (the harness does
 * not race), and every dialect rebuilds the forwarded body from the fields it knows (unknown ones are dropped),
 * so the stripping check is an end-to-end contract check: it would still pass without route-constraints.ts's
 * `delete`.
 */
import assert from "node:assert/strict";
import { chipProfiles } from "../../src/tools/fleet/chip-profiles.js";
import { SimulatedMac } from "../../src/tools/fleet/simulated-mac.js";
import { MAX_PROVIDER_SERIALS } from "../../src/http/route-constraints.js";
import { startTestCoordinator, type TestCoordinator, type TestMacOptions } from "../support/coordinator.js";
import { eventually, postJson, type RawResponse } from "../support/http.js";
import { RawProvider } from "../support/raw-provider.js";

const GPT = "gpt-oss-20b";
const GEMMA = "gemma-4-26b";

/** A Mac whose answers take real time (about 150 tokens at its decode rate) and that runs one request at a time. */
const slow = (o: TestMacOptions): TestMacOptions => ({
  instant: false,
  timeScale: 1,
  maxConcurrency: 1,
  naturalTokens: { min: 150, max: 150 },
  ...o,
});

const poolOf = (t: TestCoordinator, mac: SimulatedMac) =>
  t.coordinator.registry.view().providers.find((p) => p.id === mac.providerId)?.pool;
const waitForPool = (t: TestCoordinator, mac: SimulatedMac, pool: string) =>
  eventually(() => poolOf(t, mac) === pool, 10_000, `pool ${pool} for ${mac.serial}, has ${poolOf(t, mac)}`);
/** Waits until every connected Mac has sent a few heartbeats (so pools, if any, would have been seeded). */
const waitForHeartbeats = (t: TestCoordinator, n = 3) =>
  eventually(
    () => t.coordinator.registry.view().providers.every((p) => (p.heartbeats ?? 0) >= n),
    10_000,
    `${n} heartbeats from every Mac`,
  );

const chat = (
  t: TestCoordinator,
  o: { key?: string; model?: string; body?: Record<string, unknown>; headers?: Record<string, string> } = {},
): Promise<RawResponse> =>
  postJson(
    `${t.apiBase}/chat/completions`,
    o.key ?? t.apiKey,
    { model: o.model ?? GPT, messages: [{ role: "user", content: "hello" }], max_tokens: 200, ...o.body },
    o.headers ? { headers: o.headers } : {},
  );

const errorOf = (r: RawResponse) =>
  (JSON.parse(r.text) as { error?: { code?: string; param?: string | null; message?: string } }).error ?? {};
const requestIdOf = (r: RawResponse) => {
  const id = r.headers.get("x-request-id");
  assert.ok(id, "x-request-id header");
  return id;
};

/** POSTs an Anthropic Messages body the way the Anthropic SDK authenticates: `x-api-key`, no bearer token. */
async function postMessages(t: TestCoordinator, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(`${t.apiBase}/messages`, {
    method: "POST",
    headers: { "x-api-key": t.apiKey, "anthropic-version": "2023-06-01", "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

/** The request's ledger row once it has settled (ledger writes are asynchronous). */
async function settledRow(t: TestCoordinator, requestId: string) {
  const read = () =>
    t.db.db.selectFrom("ledger_requests").selectAll().where("request_id", "=", requestId).executeTakeFirst();
  await eventually(async () => (await read())?.state === "settled", 10_000, `ledger row of ${requestId} to settle`);
  const row = (await read())!;
  return {
    ...row,
    debit: BigInt(row.consumer_debit_micro_usd),
    credit: BigInt(row.provider_credit_micro_usd),
    completionTokens: BigInt(row.completion_tokens),
  };
}

/** An API key of the account owning every `t.addMac` Mac, funded so it can draw a credit lease. */
async function ownerKey(t: TestCoordinator): Promise<string> {
  await t.coordinator.ledger.accounts.creditAccount(t.providerAccountId, 10_000_000n, "test-credit");
  return (await t.coordinator.ledger.accounts.issueApiKey({ accountId: t.providerAccountId, name: "owner" })).apiKey;
}

let foreignSerial = 0;
/**
 * A Mac registered with another account's provider token (`t.addMac` always uses `t.providerToken`): a public
 * machine of someone who is neither the consumer nor the owner. The caller stops it.
 */
async function addForeignMac(
  t: TestCoordinator,
  o: TestMacOptions = {},
): Promise<{ mac: SimulatedMac; accountId: string }> {
  const accounts = t.coordinator.ledger.accounts;
  const other = await accounts.createAccount({ name: `other-owner-${++foreignSerial}`, tier: "consumer" });
  const { token } = await accounts.issueProviderToken({ accountId: other.id });
  const mac = new SimulatedMac({
    coordinator: `127.0.0.1:${t.coordinator.grpcPort}`,
    token,
    serial: `FOREIGN-${process.pid}-${foreignSerial}`,
    chip: chipProfiles.find((c) => c.memoryGb >= 64) ?? chipProfiles[chipProfiles.length - 1]!,
    models: [GPT],
    instant: true,
    warmModels: [GPT],
    heartbeatIntervalMs: 200,
    reconnectBaseMs: 50,
    ...o,
  });
  const registered = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mac ${mac.serial} did not register`)), 10_000);
    mac.once("registered", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  mac.start();
  await registered;
  return { mac, accountId: other.id };
}

describe("routing constraints with simulated Macs", function () {
  this.timeout(60_000);
  let t: TestCoordinator | undefined;
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) await c();
    await t?.close();
    t = undefined;
  });
  const foreign = async (o: TestMacOptions = {}) => {
    const f = await addForeignMac(t!, o);
    cleanup.push(() => f.mac.stop());
    return f;
  };

  describe("provider_serials", () => {
    it("serves only on the named Mac among several idle ones, and only on the named set when it names several", async () => {
      t = await startTestCoordinator({ macs: [] });
      const a = await t.addMac();
      const b = await t.addMac();
      const c = await t.addMac();
      await Promise.all([a, b, c].map((m) => waitForPool(t!, m, GPT)));

      for (let i = 0; i < 5; i++) {
        const r = await chat(t, { body: { provider_serials: [b.serial] } });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers.get("x-route"), null, "no X-Route asked, no x-route answered");
      }
      assert.equal(b.requestsReceived.length, 5, "every request landed on the named Mac");
      assert.deepEqual(a.requestsReceived, []);
      assert.deepEqual(c.requestsReceived, []);

      for (let i = 0; i < 6; i++) {
        const r = await chat(t, { body: { provider_serials: [a.serial, c.serial] } });
        assert.equal(r.status, 200, r.text);
      }
      assert.equal(a.requestsReceived.length + c.requestsReceived.length, 6, "all on the two named Macs");
      assert.equal(b.requestsReceived.length, 5, "the unnamed Mac saw nothing more");

      // Billed like any public request, to the Mac that served.
      const row = await settledRow(t, b.requestsReceived[0]!);
      assert.equal(row.provider_id, b.providerId);
      assert.ok(row.debit > 0n, "provider_serials is not a free route");
    });

    it("naming only an unknown or disconnected Mac is a fast 503 model_unavailable, never queued", async () => {
      t = await startTestCoordinator({ macs: [] });
      const a = await t.addMac();
      const b = await t.addMac();
      await t.waitForProviders(2);

      const expectFast503 = async (serials: string[], what: string) => {
        const r = await chat(t!, { body: { provider_serials: serials } });
        assert.equal(r.status, 503, `${what}: ${r.text}`);
        assert.equal(errorOf(r).code, "model_unavailable", what);
        assert.match(errorOf(r).message ?? "", /provider_serials/, `${what}: the message names the constraint`);
        assert.ok(r.elapsedMs < 2_000, `${what}: answered in ${r.elapsedMs} ms, without queueing`);
      };

      await expectFast503(["NO-SUCH-MAC-1"], "an unknown serial while other Macs are idle");
      await b.stop();
      await eventually(() => t!.coordinator.registry.size === 1, 10_000, "the stopped Mac to be unregistered");
      await expectFast503([b.serial], "a disconnected Mac while another one is idle");
      await a.stop();
      await eventually(() => t!.coordinator.registry.size === 0, 10_000, "no Mac to be connected");
      await expectFast503([a.serial, "NO-SUCH-MAC-2"], "no Mac connected at all");
      assert.deepEqual(a.requestsReceived, []);
      assert.deepEqual(b.requestsReceived, []);
    });

    it("a malformed provider_serials is a 400 naming the param, and nothing is dispatched", async () => {
      t = await startTestCoordinator({ macs: [] });
      const a = await t.addMac();
      const tooMany = Array.from({ length: MAX_PROVIDER_SERIALS + 1 }, (_, i) => `MAC-${i}`);
      assert.equal(tooMany.length, 17);
      const cases: [string, unknown][] = [
        ["a string", a.serial],
        ["an object", { serial: a.serial }],
        ["an empty array", []],
        ["17 serials", tooMany],
        ["a number entry", [a.serial, 42]],
        ["an empty serial", [""]],
        ["a serial with a space", ["bad serial"]],
        ["a serial with a NUL", ["MAC\u00001"]],
        ["an over-long serial", ["M".repeat(10_000)]],
      ];
      for (const [what, value] of cases) {
        const r = await chat(t, { body: { provider_serials: value } });
        assert.equal(r.status, 400, `${what}: ${r.text}`);
        assert.equal(errorOf(r).param, "provider_serials", what);
        assert.equal(errorOf(r).code, "invalid_request", what);
      }
      assert.deepEqual(a.requestsReceived, [], "no malformed request reached a Mac");

      // The limit itself is allowed: 16 serials, one of them connected.
      const sixteen = [...tooMany.slice(0, MAX_PROVIDER_SERIALS - 1), a.serial];
      const ok = await chat(t, { body: { provider_serials: sixteen } });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(a.requestsReceived.length, 1);
    });

    it("bypasses model pools: a Mac of the gemma pool serves gpt-oss when named", async () => {
      t = await startTestCoordinator({ macs: [] });
      const gemmaMac = await t.addMac({ models: [GPT, GEMMA], warmModels: [GEMMA] });
      const gptMac = await t.addMac({ models: [GPT], warmModels: [GPT] });
      await waitForPool(t, gemmaMac, GEMMA);
      await waitForPool(t, gptMac, GPT);

      // Control: without the constraint gpt-oss stays in its pool.
      const pooled = await chat(t);
      assert.equal(pooled.status, 200, pooled.text);
      assert.equal(gptMac.requestsReceived.length, 1);
      assert.deepEqual(gemmaMac.requestsReceived, []);

      const named = await chat(t, { body: { provider_serials: [gemmaMac.serial] } });
      assert.equal(named.status, 200, named.text);
      assert.equal(gemmaMac.requestsReceived.length, 1, "the gemma-pool Mac served the gpt-oss request");
      assert.equal(gptMac.requestsReceived.length, 1);
      const row = await settledRow(t, gemmaMac.requestsReceived[0]!);
      assert.deepEqual({ provider: row.provider_id, model: row.model }, { provider: gemmaMac.providerId, model: GPT });
    });

    it("is stripped before the body reaches the Mac, on every dialect (chat, completions, responses, messages)", async () => {
      t = await startTestCoordinator({ macs: [] });
      const raw = new RawProvider({ grpcPort: t.coordinator.grpcPort });
      cleanup.push(() => raw.close());
      const serial = `RAW-${process.pid}-1`;
      await raw.registerAndWait({
        authToken: t.providerToken,
        serial,
        models: [{ id: GPT, sizeBytes: 12_000_000_000n, contextLength: 32_768 }],
      });
      raw.heartbeat(GPT);
      raw.serve({ text: "Hello from the named machine." });
      await t.waitForProviders(1);

      const provider_serials = [serial];
      const bearer = (path: string, body: unknown) => postJson(`${t!.apiBase}${path}`, t!.apiKey, body);
      const responses: [string, { status: number; text: string }][] = [
        [
          "chat",
          await bearer("/chat/completions", {
            model: GPT,
            max_tokens: 32,
            temperature: 0.25,
            messages: [{ role: "user", content: "hi" }],
            provider_serials,
          }),
        ],
        ["completions", await bearer("/completions", { model: GPT, max_tokens: 32, prompt: "hi", provider_serials })],
        ["responses", await bearer("/responses", { model: GPT, max_output_tokens: 32, input: "hi", provider_serials })],
        [
          "messages",
          await postMessages(t, {
            model: GPT,
            max_tokens: 32,
            messages: [{ role: "user", content: "hi" }],
            provider_serials,
          }),
        ],
      ];
      for (const [dialect, r] of responses) {
        assert.equal(r.status, 200, `${dialect}: ${r.text}`);
        assert.match(r.text, /Hello from the named machine\./, `${dialect}: served by the named (raw) provider`);
      }

      const forwarded = raw.received.flatMap((m) =>
        m.msg.case === "inferenceRequest"
          ? [JSON.parse(Buffer.from(m.msg.value.bodyJson).toString("utf8")) as Record<string, unknown>]
          : [],
      );
      assert.equal(forwarded.length, 4, "one InferenceRequest per dialect");
      for (const body of forwarded) {
        assert.ok(
          !("provider_serials" in body),
          `forwarded body still holds provider_serials: ${JSON.stringify(body)}`,
        );
        assert.equal(body.model, GPT);
      }
      assert.equal(forwarded[0]!.temperature, 0.25, "the other fields are forwarded as sent");

      // A malformed allowlist on the Anthropic route is refused there too (in the Anthropic error shape).
      const bad = await postMessages(t, {
        model: GPT,
        max_tokens: 32,
        messages: [{ role: "user", content: "hi" }],
        provider_serials: [],
      });
      assert.equal(bad.status, 400, bad.text);
      assert.match(bad.text, /provider_serials/);
      assert.equal((JSON.parse(bad.text) as { type?: string }).type, "error");
    });
  });

  describe("private_only machines", () => {
    it("a private Mac never serves another consumer, serves its owner, and joins no pool", async () => {
      t = await startTestCoordinator({ macs: [] });
      const priv = await t.addMac({ privateOnly: true, models: [GPT], warmModels: [GPT] });
      const pub = await t.addMac({ models: [GPT], warmModels: [GPT] });
      await waitForPool(t, pub, GPT);
      await waitForHeartbeats(t);
      assert.equal(poolOf(t, priv), undefined, "a private Mac is never pooled");
      assert.equal(t.coordinator.registry.view().providers.find((p) => p.id === priv.providerId)?.privateOnly, true);

      // Another consumer: only ever the public Mac, although the private one is idle and warm.
      for (let i = 0; i < 6; i++) {
        const r = await chat(t);
        assert.equal(r.status, 200, r.text);
      }
      assert.equal(pub.requestsReceived.length, 6);
      // Nor can a consumer name it.
      const named = await chat(t, { body: { provider_serials: [priv.serial] } });
      assert.equal(named.status, 503, named.text);
      assert.equal(errorOf(named).code, "model_unavailable");
      // With the public Mac gone only the private one is capable: a fast 503 for the consumer, not a queue.
      await pub.stop();
      await eventually(() => t!.coordinator.registry.size === 1, 10_000, "the public Mac to be unregistered");
      const alone = await chat(t);
      assert.equal(alone.status, 503, alone.text);
      assert.equal(errorOf(alone).code, "model_unavailable");
      assert.ok(alone.elapsedMs < 2_000, `answered in ${alone.elapsedMs} ms`);
      assert.deepEqual(priv.requestsReceived, [], "the private Mac never saw another consumer's request");

      // Its owner, with no header, is served by it.
      const owner = await ownerKey(t);
      for (let i = 0; i < 2; i++) {
        const mine = await chat(t, { key: owner });
        assert.equal(mine.status, 200, mine.text);
        assert.equal(mine.headers.get("x-route"), null, "no X-Route asked, no x-route answered");
        assert.equal((await settledRow(t, requestIdOf(mine))).provider_id, priv.providerId);
      }
      assert.equal(priv.requestsReceived.length, 2, "the owner's requests were served on the private Mac");
      assert.equal(poolOf(t, priv), undefined, "still unpooled after serving");
    });

    it("the warm-pool planner never loads a model onto a private Mac", async () => {
      // Pools off, so only the private-machine filter (not the pool filter) keeps the planner away from it.
      t = await startTestCoordinator({ macs: [], config: { warmPoolIntervalMs: 100, modelPools: false } });
      const warm = await t.addMac({ models: [GPT], warmModels: [GPT] });
      const priv = await t.addMac({ privateOnly: true, models: [GPT], warmModels: [] });
      const holds = (mac: SimulatedMac) => {
        const p = t!.coordinator.registry.view().providers.find((v) => v.id === mac.providerId);
        return p !== undefined && (p.pendingLoads.has(GPT) || p.slots.some((s) => s.model === GPT));
      };
      const demand = async (n: number) => {
        for (let i = 0; i < n; i++) assert.equal((await chat(t!)).status, 200);
      };

      // Demand for gpt-oss: the planner wants a second warm Mac (burst buffer), and the only idle one is private.
      await demand(20);
      const until = Date.now() + 1_500;
      while (Date.now() < until) {
        assert.equal(holds(priv), false, "the planner loaded gpt-oss onto the private Mac");
        await demand(2);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(priv.requestsReceived, []);

      // Control: the same demand does load a public idle Mac (so the planner was running and wanted one).
      const cold = await t.addMac({ models: [GPT], warmModels: [] });
      await eventually(
        async () => {
          await demand(2);
          return holds(cold);
        },
        10_000,
        "the warm-pool planner to load gpt-oss onto the public idle Mac",
      );
      assert.equal(holds(priv), false);
      assert.ok(warm.requestsReceived.length > 0);
    });
  });

  describe("X-Route", () => {
    it("self: served on the caller's own Mac, at zero debit and zero credit, answered x-route: self", async () => {
      t = await startTestCoordinator({ macs: [] });
      const own = await t.addMac();
      const { mac: other } = await foreign();
      await waitForPool(t, own, GPT);
      await waitForPool(t, other, GPT);
      const owner = await ownerKey(t);

      for (let i = 0; i < 3; i++) {
        const r = await chat(t, { key: owner, headers: { "x-route": "self" } });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers.get("x-route"), "self");
        const row = await settledRow(t, requestIdOf(r));
        assert.equal(row.account_id, t.providerAccountId);
        assert.equal(row.provider_id, own.providerId, "served by the caller's own Mac");
        assert.equal(row.provider_account_id, t.providerAccountId);
        assert.ok(row.completionTokens > 0n, "tokens are recorded");
        assert.equal(row.debit, 0n, "nothing debited");
        assert.equal(row.credit, 0n, "nothing credited");
      }
      assert.equal(own.requestsReceived.length, 3);
      assert.deepEqual(other.requestsReceived, [], "never another owner's Mac");
      // Case and whitespace are not significant.
      const shouted = await chat(t, { key: owner, headers: { "x-route": "  SELF " } });
      assert.equal(shouted.status, 200, shouted.text);
      assert.equal(shouted.headers.get("x-route"), "self");
    });

    it("self: a caller who owns no capable Mac gets a fast 503 model_unavailable", async () => {
      t = await startTestCoordinator({ macs: [] });
      const mac = await t.addMac();
      const r = await chat(t, { headers: { "x-route": "self" } });
      assert.equal(r.status, 503, r.text);
      assert.equal(errorOf(r).code, "model_unavailable");
      assert.ok(r.elapsedMs < 2_000, `answered in ${r.elapsedMs} ms, without queueing`);
      assert.deepEqual(mac.requestsReceived, []);

      // The owner, asking for a model none of its Macs serves: the same.
      const owner = await ownerKey(t);
      const g = await chat(t, { key: owner, model: GEMMA, headers: { "x-route": "self" } });
      assert.equal(g.status, 503, g.text);
      assert.equal(errorOf(g).code, "model_unavailable");
      assert.ok(g.elapsedMs < 2_000);
    });

    it("prefer: the caller's own Mac when free (self, free), else a paid public Mac of another owner", async () => {
      t = await startTestCoordinator({ macs: [] });
      const own = await t.addMac(slow({ models: [GPT], warmModels: [GPT] }));
      const { mac: other } = await foreign();
      await waitForPool(t, own, GPT);
      await waitForPool(t, other, GPT);
      const owner = await ownerKey(t);

      // Own Mac free: served there, free.
      const free = await chat(t, { key: owner, headers: { "x-route": "prefer" } });
      assert.equal(free.status, 200, free.text);
      assert.equal(free.headers.get("x-route"), "self");
      const freeRow = await settledRow(t, requestIdOf(free));
      assert.equal(freeRow.provider_id, own.providerId);
      assert.equal(freeRow.debit, 0n);
      assert.equal(freeRow.credit, 0n);
      assert.ok(freeRow.completionTokens > 0n);
      assert.deepEqual(other.requestsReceived, []);

      // Own Mac busy (one request at a time): the next one goes public, and is paid.
      const holder = chat(t, { key: owner, headers: { "x-route": "self" } });
      await eventually(() => own.requestsReceived.length === 2, 5_000, "the owner's Mac to be busy");
      const busy = await chat(t, { key: owner, headers: { "x-route": "prefer" } });
      assert.equal(busy.status, 200, busy.text);
      assert.equal(busy.headers.get("x-route"), "public");
      const busyRow = await settledRow(t, requestIdOf(busy));
      assert.equal(busyRow.provider_id, other.providerId, "served by the other owner's public Mac");
      assert.ok(busyRow.debit > 0n, "a public request is paid");
      assert.ok(busyRow.credit > 0n, "and its provider is credited");
      assert.equal(other.requestsReceived.length, 1);

      const held = await holder;
      assert.equal(held.status, 200, held.text);
      assert.equal(held.headers.get("x-route"), "self");
      assert.equal((await settledRow(t, requestIdOf(held))).debit, 0n);
      assert.equal(own.requestsReceived.length, 2);
    });

    it("an invalid X-Route value is a 400 invalid_route, and nothing is dispatched", async () => {
      t = await startTestCoordinator({ macs: [] });
      const mac = await t.addMac();
      for (const value of ["private", "self,public", "mine"]) {
        const r = await chat(t, { headers: { "x-route": value } });
        assert.equal(r.status, 400, `${value}: ${r.text}`);
        assert.equal(errorOf(r).code, "invalid_route", value);
        assert.equal(errorOf(r).param, "X-Route", value);
      }
      assert.deepEqual(mac.requestsReceived, []);
      // `public` (explicit) is the default: served and paid, with no x-route answer (as without the header).
      const pub = await chat(t, { headers: { "x-route": "public" } });
      assert.equal(pub.status, 200, pub.text);
      assert.equal(pub.headers.get("x-route"), null);
      assert.ok((await settledRow(t, requestIdOf(pub))).debit > 0n);
    });
  });
});
