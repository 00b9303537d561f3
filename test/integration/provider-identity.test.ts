/**
 * Provider identity over real gRPC and PostgreSQL: a serial belongs to the account whose token first registered
 * it, only the holder of its Ed25519 key can take its place, live sessions are re-challenged, revoked tokens end
 * their sessions, and consumers see an opaque provider id, never a serial.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { chipProfiles } from "../../src/tools/fleet/chip-profiles.js";
import { SimulatedMac } from "../../src/tools/fleet/simulated-mac.js";
import { keyPairFromSeed } from "../../src/protocol/provider-keys.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { eventually, postJson } from "../support/http.js";
import { RawProvider } from "../support/raw-provider.js";

const model = { id: "gpt-oss-20b", sizeBytes: 12_000_000_000n, contextLength: 32_768 };
const chat = { model: "gpt-oss-20b", max_tokens: 16, messages: [{ role: "user", content: "hello" }] };

async function adminCall(
  t: TestCoordinator,
  method: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${t.baseUrl}/coordinator.admin.v1.AdminService/${method}`, {
    method: "POST",
    headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

describe("provider identity", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  const cleanup: (() => void | Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) await c();
    await t?.close();
  });
  const raw = (o: Partial<ConstructorParameters<typeof RawProvider>[0]> = {}) => {
    const p = new RawProvider({ grpcPort: t.coordinator.grpcPort, ...o });
    cleanup.push(() => p.close());
    return p;
  };

  it("refuses a serial takeover from another account (PERMISSION_DENIED) and the victim keeps serving", async () => {
    t = await startTestCoordinator({ macs: [{ serial: "VICTIM-1" }] });
    const victim = t.macs[0]!;
    const victimId = victim.providerId!;
    const attacker = await t.coordinator.ledger.accounts.createAccount({ name: "attacker", tier: "consumer" });
    const { token } = await t.coordinator.ledger.accounts.issueProviderToken({ accountId: attacker.id });

    // Even with the victim's public key (it is not secret) and the right signature scheme, another account's
    // token cannot register the serial.
    const p = raw();
    p.register({ authToken: token, serial: "VICTIM-1", models: [model] });
    const status = await p.status;
    assert.equal(status.code, grpc.status.PERMISSION_DENIED);
    assert.match(status.details, /registered to another account/);

    assert.equal(victim.state, "registered");
    assert.equal(t.coordinator.registry.get(victimId)?.serial, "VICTIM-1");
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get("x-provider-id"), victimId);
  });

  it("shows consumers an opaque provider id, never the serial", async () => {
    t = await startTestCoordinator({ macs: [{ serial: "SECRET-SERIAL-42" }] });
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat);
    assert.equal(r.status, 200, r.text);
    const id = r.headers.get("x-provider-id") ?? "";
    assert.match(id, /^prov_[a-z2-7]{20}$/);
    assert.ok(!r.text.includes("SECRET-SERIAL") && !id.includes("SECRET"), "the serial does not leak");
    // The owner can map the id back to its machine.
    const mine = await fetch(`${t.apiBase}/me/providers`, { headers: { authorization: `Bearer ${t.apiKey}` } });
    assert.deepEqual(((await mine.json()) as { data: unknown[] }).data, [], "the consumer's account owns no machines");
    const owner = await t.coordinator.ledger.accounts.issueApiKey({ accountId: t.providerAccountId });
    const owned = (await (
      await fetch(`${t.apiBase}/me/providers`, { headers: { authorization: `Bearer ${owner.apiKey}` } })
    ).json()) as { data: { id: string; serial: string; connected: boolean }[] };
    assert.deepEqual(
      owned.data.map((d) => [d.id, d.serial, d.connected]),
      [[id, "SECRET-SERIAL-42", true]],
    );
  });

  it("refuses a re-registration of the same account without the key's signature, and a different key", async () => {
    t = await startTestCoordinator({ macs: [{ serial: "KEYED-1" }] });
    const victim = t.macs[0]!;

    const garbage = raw({ answerChallenges: "garbage" });
    garbage.register({ authToken: t.providerToken, serial: "KEYED-1", models: [model] });
    const s1 = await garbage.status;
    assert.equal(s1.code, grpc.status.PERMISSION_DENIED);
    assert.match(s1.details, /signature invalid/);

    const silent = raw({ answerChallenges: "ignore" });
    silent.register({ authToken: t.providerToken, serial: "KEYED-1", models: [model] });
    // Nothing is decided until the challenge is answered; the victim is untouched meanwhile.
    await silent.next((m) => m.msg.case === "challenge");
    assert.equal(victim.state, "registered");
    silent.close();

    const otherKey = raw({ keys: keyPairFromSeed(randomBytes(32)) });
    otherKey.register({ authToken: t.providerToken, serial: "KEYED-1", models: [model] });
    const s2 = await otherKey.status;
    assert.equal(s2.code, grpc.status.PERMISSION_DENIED);
    assert.match(s2.details, /public key differs/);

    assert.equal(victim.state, "registered", "the live session stays");
    assert.equal(t.coordinator.registry.size, 1);
  });

  it("refuses a new serial whose key cannot sign the challenge, and binds nothing", async () => {
    t = await startTestCoordinator({ macs: [] });
    const p = raw({ answerChallenges: "garbage" });
    p.register({ authToken: t.providerToken, serial: "NEW-1", models: [model] });
    assert.equal((await p.status).code, grpc.status.PERMISSION_DENIED);
    // The serial is still free: an honest machine registers it.
    const honest = raw();
    assert.match(
      await honest.registerAndWait({ authToken: t.providerToken, serial: "NEW-1", models: [model] }),
      /^prov_/,
    );
  });

  it("fences a live session that fails a periodic challenge until its owner forgets it", async () => {
    t = await startTestCoordinator({ macs: [], config: { providerChallengeIntervalMs: 300 } });
    const p = raw();
    const id = await p.registerAndWait({ authToken: t.providerToken, serial: "FLAKY-1", models: [model] });
    // It answers the first periodic challenge, then starts signing garbage.
    await p.next((m) => m.msg.case === "challenge");
    p.o.answerChallenges = "garbage";
    const status = await p.status;
    assert.equal(status.code, grpc.status.PERMISSION_DENIED);
    assert.match(status.details, /fenced/);
    assert.equal(t.coordinator.registry.get(id), undefined);

    const again = raw();
    again.register({ authToken: t.providerToken, serial: "FLAKY-1", models: [model] });
    const refused = await again.status;
    assert.equal(refused.code, grpc.status.PERMISSION_DENIED);
    assert.match(refused.details, /fenced/);

    // The owner lifts the fence by forgetting the machine; it then registers afresh (a new opaque id).
    const owner = await t.coordinator.ledger.accounts.issueApiKey({ accountId: t.providerAccountId });
    const del = await fetch(`${t.apiBase}/me/providers/FLAKY-1`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${owner.apiKey}` },
    });
    assert.equal(del.status, 200);
    const notMine = await fetch(`${t.apiBase}/me/providers/FLAKY-1`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${t.apiKey}` },
    });
    assert.equal(notMine.status, 404, "another account cannot forget it");
    // A serial no machine could have registered (found by the fuzz suite: a NUL byte answered 500).
    for (const impossible of ["%00", "a%00b", "x".repeat(65), "%F0%9F%98%80"]) {
      const r = await fetch(`${t.apiBase}/me/providers/${impossible}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${owner.apiKey}` },
      });
      assert.equal(r.status, 404, `${impossible}: ${await r.text()}`);
    }
    const fresh = raw();
    const newId = await fresh.registerAndWait({ authToken: t.providerToken, serial: "FLAKY-1", models: [model] });
    assert.notEqual(newId, id);
  });

  it("ends live sessions within seconds when their provider token is revoked (admin API or database)", async () => {
    t = await startTestCoordinator({ macs: [{ serial: "REV-1" }], config: { providerRevocationCheckMs: 200 } });
    const accounts = t.coordinator.ledger.accounts;
    const second = await accounts.issueProviderToken({ accountId: t.providerAccountId });
    const other = new SimulatedMac({
      coordinator: `127.0.0.1:${t.coordinator.grpcPort}`,
      token: second.token,
      serial: "REV-2",
      chip: chipProfiles[5]!,
      models: ["gpt-oss-20b"],
      instant: true,
    });
    cleanup.push(() => other.stop());
    other.start();
    await other.ready();
    assert.equal(t.coordinator.registry.size, 2);

    // Through the admin API: at once.
    const r = await adminCall(t, "RevokeProviderToken", { tokenId: second.tokenId });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.sessionsEnded, 1);
    await eventually(() => other.state === "unauthenticated", 2_000, "the revoked session to end");
    assert.equal(other.lastError?.code, grpc.status.UNAUTHENTICATED);
    assert.equal(t.coordinator.registry.size, 1);
    assert.equal((await adminCall(t, "RevokeProviderToken", { tokenId: second.tokenId })).status, 404);

    // Straight in the database (another coordinator, a script): within the revocation check interval.
    await t.db.db
      .updateTable("provider_tokens")
      .set({ revoked_at: new Date() })
      .where("account_id", "=", t.providerAccountId)
      .execute();
    await eventually(() => t.macs[0]!.state === "unauthenticated", 3_000, "the first session to end");
    assert.equal(t.coordinator.registry.size, 0);
  });

  it("refuses a serial past the account's machine cap (RESOURCE_EXHAUSTED) and takes it once one is forgotten", async () => {
    t = await startTestCoordinator({
      macs: [{ serial: "CAP-1" }, { serial: "CAP-2" }],
      config: { providerMaxMachinesPerAccount: 2 },
    });
    const third = raw();
    third.register({ authToken: t.providerToken, serial: "CAP-3", models: [model] });
    const status = await third.status;
    assert.equal(status.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(status.details, /already has 2 provider machines/);
    // A machine the account already owns is not a new one: CAP-1 reconnects under the cap.
    const again = raw();
    assert.match(
      await again.registerAndWait({ authToken: t.providerToken, serial: "CAP-1", models: [model] }),
      /^prov_/,
    );
    assert.equal((await adminCall(t, "ForgetProvider", { serial: "CAP-2" })).status, 200);
    const fourth = raw();
    assert.match(
      await fourth.registerAndWait({ authToken: t.providerToken, serial: "CAP-3", models: [model] }),
      /^prov_/,
    );
  });

  it("lets an operator forget a machine so another account can register its serial", async () => {
    t = await startTestCoordinator({ macs: [{ serial: "SOLD-1" }] });
    const buyer = await t.coordinator.ledger.accounts.createAccount({ name: "buyer", tier: "consumer" });
    const { token } = await t.coordinator.ledger.accounts.issueProviderToken({ accountId: buyer.id });
    assert.equal((await adminCall(t, "ForgetProvider", { serial: "SOLD-1" })).status, 200);
    await eventually(() => t.macs[0]!.state !== "registered", 2_000, "the old session to end");
    await t.macs[0]!.stop();
    const p = raw({ keys: keyPairFromSeed(randomBytes(32)) });
    const id = await p.registerAndWait({ authToken: token, serial: "SOLD-1", models: [model] });
    assert.equal(t.coordinator.registry.get(id)?.accountId, buyer.id);
    assert.equal((await adminCall(t, "ForgetProvider", { serial: "NOPE" })).status, 404);
  });
});
