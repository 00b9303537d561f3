/**
 * The provider gRPC edge: authentication, serial replacement, eviction of silent providers.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { chipProfiles } from "../../src/tools/fleet/chip-profiles.js";
import { SimulatedMac } from "../../src/tools/fleet/simulated-mac.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { eventually } from "../support/http.js";
import { RawProvider } from "../support/raw-provider.js";

describe("provider sessions over gRPC", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  const extra: SimulatedMac[] = [];
  afterEach(async () => {
    await Promise.all(extra.splice(0).map((m) => m.stop()));
    await t?.close();
  });

  it("refuses a bad provider token with UNAUTHENTICATED and registers nothing", async () => {
    t = await startTestCoordinator({ macs: [] });
    const mac = new SimulatedMac({
      coordinator: `127.0.0.1:${t.coordinator.grpcPort}`,
      token: "not-a-token",
      serial: "BAD-1",
      chip: chipProfiles[0]!,
      models: ["gpt-oss-20b"],
      instant: true,
    });
    extra.push(mac);
    mac.start();
    await eventually(() => mac.state === "unauthenticated", 5_000, "auth failure");
    assert.equal(mac.lastError?.code, grpc.status.UNAUTHENTICATED);
    assert.match(mac.lastError?.details ?? "", /invalid provider token/);
    assert.equal(t.coordinator.registry.size, 0);
  });

  it("refuses Register from an address past AUTH_FAILURE_BURST invalid tokens with RESOURCE_EXHAUSTED, before any lookup, except a token verified recently", async () => {
    t = await startTestCoordinator({ macs: [], config: { authFailureBurst: 3, authFailureRefillPerS: 0.01 } });
    const models = [{ id: "gpt-oss-20b", sizeBytes: 12_000_000_000n }];
    const attempt = async (token: string, serial: string) => {
      const p = new RawProvider({ grpcPort: t.coordinator.grpcPort });
      try {
        p.register({ authToken: token, serial, models });
        return await p.status;
      } finally {
        p.close();
      }
    };
    // Two Macs of this address register before the spray: their tokens are verified.
    const revocable = await t.coordinator.ledger.accounts.issueProviderToken({ accountId: t.accountId });
    for (const [token, serial] of [
      [t.providerToken, "HONEST-1"],
      [revocable.token, "HONEST-2"],
    ] as const) {
      const honest = new RawProvider({ grpcPort: t.coordinator.grpcPort });
      await honest.registerAndWait({ authToken: token, serial, models });
      honest.close();
    }
    await eventually(() => t.coordinator.registry.size === 0, 5_000, "the honest Macs gone");
    for (let i = 0; i < 3; i++) {
      const s = await attempt(`sprayed-${i}`, `SPRAY-${i}`);
      assert.equal(s.code, grpc.status.UNAUTHENTICATED, `attempt ${i + 1}: ${s.details}`);
    }
    let lookups = 0;
    const authenticate = t.coordinator.ledger.accounts.authenticateProvider;
    t.coordinator.ledger.accounts.authenticateProvider = (token) => (lookups++, authenticate(token));
    const fourth = await attempt("sprayed-3", "SPRAY-3");
    assert.equal(fourth.code, grpc.status.RESOURCE_EXHAUSTED, fourth.details);
    assert.match(fourth.details, /too many invalid provider tokens from this address; retry in \d+ s/);
    // A good token this process never verified is held off with the sprayer (as unknown keys on the consumer port).
    const unseen = await t.coordinator.ledger.accounts.issueProviderToken({ accountId: t.accountId });
    const refused = await attempt(unseen.token, "SPRAY-NEW");
    assert.equal(refused.code, grpc.status.RESOURCE_EXHAUSTED, refused.details);
    assert.equal(lookups, 0, "no token was looked up while the address was throttled");
    // The Mac whose token was verified reconnects through the throttle.
    const back = new RawProvider({ grpcPort: t.coordinator.grpcPort });
    await back.registerAndWait({ authToken: t.providerToken, serial: "HONEST-1", models });
    assert.equal(t.coordinator.registry.size, 1);
    back.close();
    // Once revoked, a verified token is refused by its lookup and throttled like any other from then on.
    await t.coordinator.ledger.accounts.revokeProviderToken(revocable.tokenId);
    assert.equal((await attempt(revocable.token, "HONEST-2")).code, grpc.status.UNAUTHENTICATED);
    assert.equal((await attempt(revocable.token, "HONEST-2")).code, grpc.status.RESOURCE_EXHAUSTED);
  });

  it("charges a failed token to its address even when the caller hangs up before the lookup answers", async () => {
    t = await startTestCoordinator({ macs: [], config: { authFailureBurst: 3, authFailureRefillPerS: 0.01 } });
    const authenticate = t.coordinator.ledger.accounts.authenticateProvider;
    t.coordinator.ledger.accounts.authenticateProvider = async (token) => {
      await new Promise((r) => setTimeout(r, 200));
      return authenticate(token);
    };
    const models = [{ id: "gpt-oss-20b", sizeBytes: 12_000_000_000n }];
    for (let i = 0; i < 3; i++) {
      const p = new RawProvider({ grpcPort: t.coordinator.grpcPort });
      p.register({ authToken: `gone-${i}`, serial: `GONE-${i}`, models });
      await new Promise((r) => setTimeout(r, 50));
      p.close(); // before the 200 ms lookup answers
    }
    await new Promise((r) => setTimeout(r, 400));
    const p = new RawProvider({ grpcPort: t.coordinator.grpcPort });
    p.register({ authToken: "gone-3", serial: "GONE-3", models });
    const status = await p.status;
    p.close();
    assert.equal(status.code, grpc.status.RESOURCE_EXHAUSTED, status.details);
  });

  it("lets the same machine (same account, same key) replace its old session, under the same opaque id", async () => {
    t = await startTestCoordinator({ macs: [{ serial: "SAME-1" }] });
    const first = t.macs[0]!;
    const firstId = first.providerId!;
    assert.match(firstId, /^prov_[a-z2-7]{20}$/, "an opaque id, not the serial");
    const twin = new SimulatedMac({
      coordinator: `127.0.0.1:${t.coordinator.grpcPort}`,
      token: t.providerToken,
      serial: "SAME-1",
      chip: chipProfiles[5]!,
      models: ["gpt-oss-20b"],
      instant: true,
      reconnectBaseMs: 60_000,
    });
    extra.push(twin);
    twin.start();
    await eventually(() => first.state !== "registered" && twin.state === "registered", 5_000, "the twin to take over");
    assert.equal(twin.providerId, firstId, "the machine keeps its id across sessions");
    assert.equal(t.coordinator.registry.size, 1, "one session per serial");
    assert.equal(
      t.coordinator.registry.get(firstId)?.hardware.chipName,
      chipProfiles[5]!.chipName,
      "the record is the new session's",
    );
  });

  it("evicts a provider that registers and then goes silent, ending its stream with DEADLINE_EXCEEDED", async () => {
    t = await startTestCoordinator({ config: { heartbeatTimeoutMs: 600 }, macs: [] });
    const p = new RawProvider({ grpcPort: t.coordinator.grpcPort });
    const id = await p.registerAndWait({
      authToken: t.providerToken,
      serial: "SILENT-1",
      models: [{ id: "gpt-oss-20b", sizeBytes: 12_000_000_000n }],
    });
    assert.ok(t.coordinator.registry.get(id), "registered");
    const status = await p.status; // no heartbeat, no frame: the sweep evicts it
    assert.equal(status.code, grpc.status.DEADLINE_EXCEEDED);
    assert.equal(t.coordinator.registry.get(id), undefined);
    p.close();
  });
});
