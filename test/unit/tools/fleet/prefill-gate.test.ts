import assert from "node:assert/strict";
import { chipProfile } from "../../../../src/tools/fleet/chip-profiles.js";
import { PrefillGate } from "../../../../src/tools/fleet/inference-run.js";
import { SimulatedMac } from "../../../../src/tools/fleet/simulated-mac.js";
import { FakeCoordinator, GOOD_TOKEN } from "./fake-coordinator.js";

describe("PrefillGate (one prefill at a time per Mac)", () => {
  it("grants turns first come first served, one at a time", async () => {
    const gate = new PrefillGate();
    const order: string[] = [];
    const a = await gate.acquire();
    const b = gate.acquire().then((release) => (order.push("b"), release));
    const c = gate.acquire().then((release) => (order.push("c"), release));
    assert.equal(gate.waiting, 2);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, [], "nobody runs while the first prefill holds the gate");
    a();
    a(); // releasing twice does not hand out two turns
    (await b)();
    (await c)();
    assert.deepEqual(order, ["b", "c"]);
    assert.equal(gate.waiting, 0);
  });
});

describe("SimulatedMac: serial prefill", () => {
  let coord: FakeCoordinator;
  let mac: SimulatedMac | undefined;

  beforeEach(async () => {
    coord = await FakeCoordinator.start();
  });
  afterEach(() => {
    mac?.kill();
    mac = undefined;
    coord.close();
  });

  it("a short prompt sent just after a long one gets its first token after the long one's prefill", async () => {
    mac = new SimulatedMac({
      coordinator: coord.address,
      token: GOOD_TOKEN,
      serial: "SIM-PREFILL",
      chip: chipProfile("m4-max-128")!,
      models: ["gpt-oss-20b"],
      timeScale: 40,
      diskGbs: 1000,
      reconnectBaseMs: 20,
      naturalTokens: { min: 5, max: 5 },
    });
    mac.start();
    await mac.ready();
    const s = await coord.session(1);
    s.send({ msg: { case: "loadModel", value: { model: "gpt-oss-20b" } } });
    await s.until(() => mac!.loadedModels().includes("gpt-oss-20b"), 5000, "model load");
    // ~20,000 prompt tokens (~10 s of simulated prefill, 250 ms real) then a 10-token prompt.
    s.infer("long", "gpt-oss-20b", {
      model: "gpt-oss-20b",
      messages: [{ role: "user", content: "word ".repeat(16_000) }],
    });
    s.infer("short", "gpt-oss-20b", { model: "gpt-oss-20b", messages: [{ role: "user", content: "hi" }] });
    await Promise.all([s.finished("long"), s.finished("short")]);
    const firstChunk = (id: string) =>
      s.frames.findIndex((f) => f.msg.case === "inferenceChunk" && f.msg.value.requestId === id);
    // With parallel prefill the short prompt would stream first.
    assert.ok(
      firstChunk("long") >= 0 && firstChunk("long") < firstChunk("short"),
      `long ${firstChunk("long")} short ${firstChunk("short")}`,
    );
  });
});
