import assert from "node:assert/strict";
import {
  ErrorReason,
  FinishReason,
  LoadState,
  SlotState,
  type ProviderMessage,
} from "../../../../gen/coordinator/provider/v1/provider_pb.js";
import { chipProfile } from "../../../../src/tools/fleet/chip-profiles.js";
import { SimulatedMac, type SimulatedMacOptions } from "../../../../src/tools/fleet/simulated-mac.js";
import { FakeCoordinator, GOOD_TOKEN, type FakeSession } from "./fake-coordinator.js";
import { chat, complete, deltas, error, sleep } from "./provider-frames.js";

const M4_MAX = chipProfile("m4-max-128")!;

function contentText(frames: ProviderMessage[]): string {
  return deltas(frames)
    .map((d) => (d.case === "content" ? d.value : ""))
    .join("");
}

describe("SimulatedMac", () => {
  let coord: FakeCoordinator;
  let macs: SimulatedMac[] = [];

  beforeEach(async () => {
    coord = await FakeCoordinator.start();
  });
  afterEach(async () => {
    for (const m of macs) m.kill();
    macs = [];
    coord.close();
  });

  async function startMac(
    overrides: Partial<SimulatedMacOptions> = {},
  ): Promise<{ mac: SimulatedMac; s: FakeSession }> {
    const mac = new SimulatedMac({
      coordinator: coord.address,
      token: GOOD_TOKEN,
      serial: `SIM-${macs.length}`,
      chip: M4_MAX,
      models: ["gpt-oss-20b", "gemma-4-26b"],
      timeScale: 1000,
      reconnectBaseMs: 20,
      ...overrides,
    });
    macs.push(mac);
    mac.start();
    await mac.ready();
    return { mac, s: await coord.session(coord.sessions.length) };
  }

  async function warm(mac: SimulatedMac, s: FakeSession, model = "gpt-oss-20b"): Promise<void> {
    s.send({ msg: { case: "loadModel", value: { model } } });
    await s.until(() => mac.loadedModels().includes(model), 5000, "model load");
  }

  it("registers with its token, serial, version, hardware, benchmark rates and models on disk", async () => {
    const { mac, s } = await startMac({
      version: "0.6.5",
      models: ["gpt-oss-20b", { id: "gemma-4-26b", templateRenderOk: false }],
    });
    const r = s.register!;
    assert.equal(r.authToken, GOOD_TOKEN);
    assert.equal(r.serial, "SIM-0");
    assert.equal(r.version, "0.6.5");
    assert.equal(r.hardware?.chipName, "Apple M4 Max");
    assert.equal(r.hardware?.chipFamily, "M4");
    assert.equal(r.hardware?.memoryGb, 128);
    assert.ok(r.decodeTps >= 60 && r.decodeTps <= 75, `gpt-oss decode ${r.decodeTps}`);
    assert.ok(r.prefillTps > r.decodeTps * 10);
    assert.deepEqual(
      r.models.map((m) => [m.id, m.sizeBytes, m.isVision, m.templateRenderOk]),
      [
        ["gpt-oss-20b", 12_000_000_000n, false, undefined],
        ["gemma-4-26b", 16_000_000_000n, true, false],
      ],
    );
    assert.equal(mac.providerId, "prov-1");
    assert.equal(mac.state, "registered");
  });

  it("loads a model on LoadModel and then reports its slot and token budget in heartbeats", async () => {
    const { mac, s } = await startMac();
    await warm(mac, s);
    const statuses = s.frames.flatMap((f) => (f.msg.case === "modelLoadStatus" ? [f.msg.value] : []));
    assert.deepEqual(
      statuses.map((x) => x.state),
      [LoadState.STARTED, LoadState.SUCCEEDED],
    );
    assert.equal(statuses[1]!.loadTimeMs, 4000); // 12 GB at 3 GB/s, simulated
    const hb = await s.until(() => {
      const beats = s.frames.filter(
        (f) => f.msg.case === "heartbeat" && f.msg.value.capacity?.slots.some((x) => x.state === SlotState.IDLE),
      );
      const last = beats.at(-1);
      return last?.msg.case === "heartbeat" ? last.msg.value : undefined;
    });
    const slot = hb.capacity!.slots[0]!;
    assert.equal(slot.model, "gpt-oss-20b");
    assert.equal(slot.kvBytesPerToken, 49_152n);
    // (128 − 12.8 reserve − 12 weights) GB ÷ 49,152 B/token
    assert.equal(slot.activeTokenBudgetMax, BigInt(Math.floor((128e9 - 12.8e9 - 12e9) / 49_152)));
    assert.equal(slot.maxConcurrency, 8);
    assert.equal(hb.capacity!.totalMemoryGb, 128);
    assert.ok(hb.capacity!.freeForLoadGb! > 30 && hb.capacity!.freeForLoadGb! < 40);
    assert.deepEqual(hb.warmModels, ["gpt-oss-20b"]);
  });

  it("accepts a request for a cold model, loads it, then streams role and content and stops at max_tokens", async () => {
    const { s } = await startMac({ naturalTokens: { min: 100, max: 100 } });
    s.infer("r1", "gpt-oss-20b", chat("hello there", { max_tokens: 10 }));
    const frames = await s.finished("r1");
    assert.equal(frames[0]!.msg.case, "inferenceAccepted");
    const loadStarted = s.frames.findIndex(
      (f) => f.msg.case === "modelLoadStatus" && f.msg.value.state === LoadState.STARTED,
    );
    assert.ok(loadStarted > s.frames.indexOf(frames[0]!), "InferenceAccepted precedes ModelLoadStatus STARTED");
    const ds = deltas(frames);
    assert.deepEqual(ds[0], { case: "role", value: "assistant" });
    assert.equal(ds.filter((d) => d.case === "content").length, 10);
    const done = complete(frames)!;
    assert.equal(done.finishReason, FinishReason.LENGTH);
    assert.equal(done.usage?.completionTokens, 10);
    assert.ok(done.usage!.promptTokens > 0);
  });

  it("finishes with STOP at the natural length and reports exactly the emitted tokens", async () => {
    const { mac, s } = await startMac({ naturalTokens: { min: 20, max: 60 } });
    await warm(mac, s);
    s.infer("r1", "gpt-oss-20b", chat("what is unified memory?"));
    const frames = await s.finished("r1");
    const done = complete(frames)!;
    assert.equal(done.finishReason, FinishReason.STOP);
    const n = deltas(frames).filter((d) => d.case === "content").length;
    assert.ok(n >= 20 && n <= 60);
    assert.equal(done.usage?.completionTokens, n);
  });

  it("gives the same text for the same request and different text for another", async () => {
    const { mac, s } = await startMac({ instant: true });
    await warm(mac, s);
    s.infer("a", "gpt-oss-20b", chat("same question"));
    s.infer("b", "gpt-oss-20b", chat("same question"));
    s.infer("c", "gpt-oss-20b", chat("another question"));
    const [a, b, c] = await Promise.all([s.finished("a"), s.finished("b"), s.finished("c")]);
    assert.ok(contentText(a).length > 0);
    assert.equal(contentText(a), contentText(b));
    assert.notEqual(contentText(a), contentText(c));
  });

  it("coalesces many tokens into few chunks in instant mode and survives backpressure", async () => {
    const { mac, s } = await startMac({ instant: true, naturalTokens: { min: 5000, max: 5000 } });
    await warm(mac, s);
    s.infer("big", "gpt-oss-20b", chat("write a lot", { max_tokens: 5000 }));
    const frames = await s.finished("big");
    const chunks = frames.filter((f) => f.msg.case === "inferenceChunk").length;
    assert.ok(chunks <= 5000 / 64 + 3, `${chunks} chunks`);
    assert.equal(deltas(frames).filter((d) => d.case === "content").length, 5000);
    assert.equal(complete(frames)?.usage?.completionTokens, 5000);
  });

  it("decodes each stream slower when two requests generate at once", async () => {
    const { mac, s } = await startMac({ timeScale: 10, naturalTokens: { min: 150, max: 150 } });
    await warm(mac, s);
    s.infer("solo", "gpt-oss-20b", chat("x"));
    await s.finished("solo");
    s.infer("p1", "gpt-oss-20b", chat("y"));
    s.infer("p2", "gpt-oss-20b", chat("z"));
    await Promise.all([s.finished("p1"), s.finished("p2")]);
    const rate = (id: string) => mac.records.find((r) => r.requestId === id)!.decodeTps!;
    const base = s.register!.decodeTps;
    assert.ok(rate("solo") > base * 0.85 && rate("solo") < base * 1.05, `solo ${rate("solo")} vs ${base}`);
    for (const id of ["p1", "p2"]) {
      const ratio = rate(id) / rate("solo");
      assert.ok(ratio > 0.65 && ratio < 0.9, `${id} ratio ${ratio} (expected ~1/1.27)`);
    }
  });

  it("stops generating at once on CancelInference and records the cancel", async () => {
    const { mac, s } = await startMac({ timeScale: 1, diskGbs: 1000, naturalTokens: { min: 2000, max: 2000 } });
    mac.script({ kind: "normal" });
    s.send({ msg: { case: "loadModel", value: { model: "gpt-oss-20b" } } });
    await s.until(() => mac.loadedModels().length > 0, 6000, "load");
    s.infer("long", "gpt-oss-20b", chat("tell me everything"));
    await s.until(() => deltas(s.framesFor("long")).some((d) => d.case === "content"), 3000, "first content");
    s.send({ msg: { case: "cancelInference", value: { requestId: "long", reason: "client gone" } } });
    await s.until(() => mac.activeRequests() === 0, 2000, "run ended");
    const countAtCancel = s.framesFor("long").length;
    await sleep(100);
    assert.equal(s.framesFor("long").length, countAtCancel);
    assert.equal(complete(s.framesFor("long")), undefined);
    assert.equal(error(s.framesFor("long")), undefined);
    assert.deepEqual(mac.cancelsReceived, ["long"]);
    assert.equal(mac.records.at(-1)?.outcome, "aborted");
  });

  it("rejects with 503 CAPACITY when max concurrency is exhausted", async () => {
    const { mac, s } = await startMac({ maxConcurrency: 1 });
    await warm(mac, s);
    mac.script({ kind: "role_then_stall" });
    s.infer("hold", "gpt-oss-20b", chat("a"));
    await s.until(() => s.framesFor("hold").length > 0, 3000, "role");
    s.infer("over", "gpt-oss-20b", chat("b"));
    const e = error(await s.finished("over"))!;
    assert.equal(e.statusCode, 503);
    assert.equal(e.reason, ErrorReason.CAPACITY);
  });

  it("refuses a load that breaks its weights x 3 memory rule", async () => {
    const { mac, s } = await startMac({ chip: chipProfile("m4-pro-48")! });
    s.infer("g", "gemma-4-26b", chat("hi", { model: "gemma-4-26b" }));
    const e = error(await s.finished("g"))!;
    assert.equal(e.statusCode, 503);
    assert.equal(e.reason, ErrorReason.INSUFFICIENT_MEMORY);
    assert.ok(
      s.frames.some(
        (f) =>
          f.msg.case === "modelLoadStatus" &&
          f.msg.value.model === "gemma-4-26b" &&
          f.msg.value.state === LoadState.FAILED,
      ),
    );
    assert.deepEqual(mac.loadedModels(), []);
  });

  it("reports a bad token once and does not reconnect in a loop", async () => {
    const mac = new SimulatedMac({
      coordinator: coord.address,
      token: "wrong",
      serial: "BAD",
      chip: M4_MAX,
      models: ["gpt-oss-20b"],
      reconnectBaseMs: 5,
    });
    macs.push(mac);
    mac.start();
    await assert.rejects(mac.ready(), /UNAUTHENTICATED/);
    await sleep(150);
    assert.equal(mac.state, "unauthenticated");
    assert.equal(coord.sessions.length, 1);
    assert.equal(mac.lastError?.details, "unknown provider token");
  });

  it("stop() ends the stream cleanly and kill() ends it without reconnecting", async () => {
    const a = await startMac();
    const b = await startMac();
    await a.mac.stop();
    b.mac.kill();
    await a.s.until(() => a.s.ended, 2000, "a ended");
    await b.s.until(() => b.s.ended, 2000, "b ended");
    await sleep(100);
    assert.equal(coord.sessions.length, 2);
    assert.equal(a.mac.state, "stopped");
    assert.equal(b.mac.state, "stopped");
  });

  it("reconnects with the same serial when the stream breaks", async () => {
    const { mac } = await startMac();
    mac.dropConnection();
    const second = await coord.session(2);
    assert.equal(second.register?.serial, "SIM-0");
    await second.until(() => mac.registrations === 2, 2000, "re-registration");
  });
});
