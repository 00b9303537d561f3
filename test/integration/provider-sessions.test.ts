/**
 * The provider gRPC edge: authentication, serial replacement, eviction of silent providers.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { ProviderMessageSchema, ProviderService, type CoordinatorMessage, type ProviderMessage } from "../../gen/coordinator/provider/v1/provider_pb.js";
import { chipProfiles } from "../../src/fleet/chip-profiles.js";
import { grpcServiceDefinition } from "../../src/protocol/grpc-service.js";
import { SimulatedMac } from "../../src/fleet/simulated-mac.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { eventually } from "../support/http.js";

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
    const mac = new SimulatedMac({ coordinator: `127.0.0.1:${t.coordinator.grpcPort}`, token: "not-a-token", serial: "BAD-1", chip: chipProfiles[0]!, models: ["gpt-oss-20b"], instant: true });
    extra.push(mac);
    mac.start();
    await eventually(() => mac.state === "unauthenticated", 5_000, "auth failure");
    assert.equal(mac.lastError?.code, grpc.status.UNAUTHENTICATED);
    assert.match(mac.lastError?.details ?? "", /invalid provider token/);
    assert.equal(t.coordinator.registry.size, 0);
  });

  it("replaces the old session when the same serial connects again", async () => {
    t = await startTestCoordinator({ macs: [{ serial: "SAME-1" }] });
    const first = t.macs[0]!;
    const firstId = first.providerId;
    const twin = new SimulatedMac({ coordinator: `127.0.0.1:${t.coordinator.grpcPort}`, token: t.providerToken, serial: "SAME-1", chip: chipProfiles[5]!, models: ["gpt-oss-20b"], instant: true, reconnectBaseMs: 60_000 });
    extra.push(twin);
    twin.start();
    await eventually(() => t.coordinator.registry.bySerial("SAME-1")?.id === twin.providerId, 5_000, "the twin to take over");
    assert.notEqual(twin.providerId, firstId);
    assert.equal(t.coordinator.registry.size, 1, "one session per serial");
    assert.equal(t.coordinator.registry.get(firstId!), undefined);
  });

  it("evicts a provider that registers and then goes silent, ending its stream with DEADLINE_EXCEEDED", async () => {
    t = await startTestCoordinator({ config: { heartbeatTimeoutMs: 600 }, macs: [] });
    const Client = grpc.makeGenericClientConstructor(grpcServiceDefinition(ProviderService), "ProviderService");
    const client = new Client(`127.0.0.1:${t.coordinator.grpcPort}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      connect(): grpc.ClientDuplexStream<ProviderMessage, CoordinatorMessage>;
    };
    const call = client.connect();
    const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    call.on("error", () => undefined);
    const acked = new Promise<string>((resolve) => call.on("data", (m: CoordinatorMessage) => m.msg.case === "registerAck" && resolve(m.msg.value.providerId)));
    call.write(
      create(ProviderMessageSchema, {
        msg: { case: "register", value: { authToken: t.providerToken, serial: "SILENT-1", version: "0.7.0", models: [{ id: "gpt-oss-20b", sizeBytes: 12_000_000_000n }] } },
      }),
    );
    const id = await acked;
    assert.ok(t.coordinator.registry.get(id), "registered");
    const status = await ended; // no heartbeat, no frame: the sweep evicts it
    assert.equal(status.code, grpc.status.DEADLINE_EXCEEDED);
    assert.equal(t.coordinator.registry.get(id), undefined);
    client.close();
  });
});
