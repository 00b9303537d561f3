/**
 * "Why isn't my Mac getting traffic?" (issue 14, item 6): `GET /v1/me/providers` gives the owner the coordinator's
 * own verdict on each machine it owns — here a fenced, a cooled, an idle and a serving Mac, all real simulated
 * Macs over gRPC — and the admin provider list carries the same pool and verdict fields.
 */
import assert from "node:assert/strict";
import type { SimulatedMac } from "../../src/tools/fleet/simulated-mac.js";
import { adminCall } from "../support/coordinator-process.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { eventually, postJson } from "../support/http.js";

const GPT = "gpt-oss-20b";

interface Owned {
  provider_id: string;
  serial: string;
  state: string;
  pool: string | null;
  models: string[];
  routable: boolean;
  reason: string;
}

describe("GET /v1/me/providers: the owner's view", function () {
  this.timeout(60_000);
  let t: TestCoordinator;
  let ownerKey: string;
  before(async () => {
    t = await startTestCoordinator({ macs: [] });
    ownerKey = (await t.coordinator.ledger.accounts.issueApiKey({ accountId: t.providerAccountId, name: "owner" }))
      .apiKey;
  });
  after(async () => t?.close());

  const owned = async (key = ownerKey): Promise<Owned[]> => {
    const r = await fetch(`${t.apiBase}/me/providers`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(r.status, 200);
    return ((await r.json()) as { data: Owned[] }).data;
  };
  const verdictOf = async (mac: SimulatedMac) => (await owned()).find((p) => p.serial === mac.serial)!;
  const chat = (extra: Record<string, unknown> = {}) =>
    postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
      model: GPT,
      messages: [{ role: "user", content: "hello" }],
      max_tokens: 50,
      ...extra,
    });

  it("shows a fenced, a cooled, an idle and a serving Mac each with the coordinator's verdict", async () => {
    const idle = await t.addMac({ models: [GPT], warmModels: [] });
    const serving = await t.addMac({
      models: [GPT],
      warmModels: [GPT],
      instant: false,
      timeScale: 1,
      maxConcurrency: 1,
      naturalTokens: { min: 150, max: 150 },
    });
    const cooled = await t.addMac({
      models: [GPT],
      warmModels: [GPT],
      failures: {
        script: [
          { kind: "error_before_content", when: { hasTools: true } },
          { kind: "error_before_content", when: { hasTools: true } },
        ],
      },
    });
    const fenced = await t.addMac({ models: [GPT], warmModels: [GPT] });
    await eventually(async () => (await owned()).every((p) => p.pool === GPT), 10_000, "every Mac in its pool");

    const idleView = await verdictOf(idle);
    assert.deepEqual(
      {
        state: idleView.state,
        pool: idleView.pool,
        models: idleView.models,
        routable: idleView.routable,
        reason: idleView.reason,
        provider_id: idleView.provider_id,
      },
      {
        state: "idle",
        pool: GPT,
        models: [GPT],
        routable: true,
        reason: `idle: its pool (${GPT}) has enough warm Macs`,
        provider_id: idle.providerId,
      },
    );

    // Serving: a request pinned to the Mac (provider_serials) is running on it.
    const running = chat({ provider_serials: [serving.serial] });
    await eventually(() => serving.requestsReceived.length === 1, 5_000, "the request on the serving Mac");
    assert.deepEqual((({ state, routable, reason }) => ({ state, routable, reason }))(await verdictOf(serving)), {
      state: "serving",
      routable: true,
      reason: `serving ${GPT}`,
    });

    // Cooled: two tool requests fail on it (nothing else may take them), which cools (Mac, model, tools).
    const tools = [{ type: "function", function: { name: "lookup", parameters: { type: "object", properties: {} } } }];
    for (let i = 0; i < 2; i++) {
      const r = await chat({ tools, provider_serials: [cooled.serial] });
      assert.ok(r.status >= 500, `the scripted error reaches the caller: ${r.status} ${r.text}`);
    }
    const cooledView = await verdictOf(cooled);
    assert.equal(cooledView.routable, true, "plain requests still go to it");
    assert.match(cooledView.reason, new RegExp(`cooling down after 2 errors on tools on ${GPT}`));
    const plain = await chat({ provider_serials: [cooled.serial] });
    assert.equal(plain.status, 200, plain.text);

    // Fenced: the coordinator refuses the machine until its owner forgets it.
    await t.coordinator.providers.fence(fenced.providerId!, "usage claims repeatedly above the coordinator's count");
    const fencedView = await verdictOf(fenced);
    assert.deepEqual(
      { state: fencedView.state, routable: fencedView.routable, reason: fencedView.reason },
      {
        state: "fenced",
        routable: false,
        reason: "excluded: fenced by the coordinator (usage claims repeatedly above the coordinator's count)",
      },
    );
    await fenced.stop();

    assert.equal((await running).status, 200);
    await eventually(async () => (await verdictOf(serving)).state === "idle", 5_000, "the serving Mac idle again");
    assert.match((await verdictOf(serving)).reason, new RegExp(`^idle: ${GPT} loaded`));

    // Nobody else sees these machines.
    assert.deepEqual(await owned(t.apiKey), []);

    // The operator's list carries the pool and the same verdict.
    const listed = await adminCall<{
      providers: { serial: string; pool?: string; routable?: boolean; reason?: string }[];
    }>(t.baseUrl, t.adminKey, "ListProviders", {});
    const adminIdle = listed.providers.find((p) => p.serial === idle.serial)!;
    assert.equal(adminIdle.pool, GPT);
    assert.equal(adminIdle.routable, true);
    assert.equal(adminIdle.reason, `idle: its pool (${GPT}) has enough warm Macs`);
    assert.ok(!listed.providers.some((p) => p.serial === fenced.serial), "a fenced machine is not connected");
  });
});
