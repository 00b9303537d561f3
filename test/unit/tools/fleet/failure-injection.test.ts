import assert from "node:assert/strict";
import {
  ErrorReason,
  FinishReason,
  type ProviderMessage,
} from "../../../../gen/coordinator/provider/v1/provider_pb.js";
import { chipProfile } from "../../../../src/tools/fleet/chip-profiles.js";
import { SimulatedMac, type SimulatedMacOptions } from "../../../../src/tools/fleet/simulated-mac.js";
import { FakeCoordinator, GOOD_TOKEN, type FakeSession } from "./fake-coordinator.js";
import { chat, complete, deltas, error, sleep } from "./provider-frames.js";

const tool = (parameters: unknown) => ({ type: "function", function: { name: "get_weather", parameters } });
const nullableSchema = { type: "object", properties: { city: { type: "string" }, unit: { type: ["string", "null"] } } };
const repairedSchema = {
  type: "object",
  properties: { city: { type: "string" }, unit: { type: "string", nullable: true } },
};

const contentCount = (frames: ProviderMessage[]) => deltas(frames).filter((d) => d.case === "content").length;

describe("SimulatedMac failure injection", () => {
  let coord: FakeCoordinator;
  let macs: SimulatedMac[] = [];

  beforeEach(async () => {
    coord = await FakeCoordinator.start();
  });
  afterEach(() => {
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
      serial: `FAIL-${macs.length}`,
      chip: chipProfile("m4-max-128")!,
      models: ["gpt-oss-20b", "gemma-4-26b"],
      instant: true,
      reconnectBaseMs: 20,
      warmModels: ["gpt-oss-20b"],
      naturalTokens: { min: 30, max: 30 },
      ...overrides,
    });
    macs.push(mac);
    mac.start();
    await mac.ready();
    const s = await coord.session(coord.sessions.length);
    await s.until(() => mac.loadedModels().length > 0, 3000, "warm model");
    return { mac, s };
  }

  it("error_before_content sends the role delta then a 500 INTERNAL error and no content", async () => {
    const { mac, s } = await startMac();
    mac.script({ kind: "error_before_content" });
    s.infer("r", "gpt-oss-20b", chat("hi"));
    const frames = await s.finished("r");
    assert.deepEqual(deltas(frames), [{ case: "role", value: "assistant" }]);
    const e = error(frames)!;
    assert.equal(e.statusCode, 500);
    assert.equal(e.reason, ErrorReason.INTERNAL);
  });

  it("error_before_content without the role delta uses the chosen status and reason", async () => {
    const { mac, s } = await startMac();
    mac.script({
      kind: "error_before_content",
      afterRole: false,
      statusCode: 502,
      reason: ErrorReason.MODEL_LOAD_FAILED,
    });
    s.infer("r", "gpt-oss-20b", chat("hi"));
    const frames = await s.finished("r");
    assert.deepEqual(deltas(frames), []);
    assert.equal(error(frames)?.statusCode, 502);
    assert.equal(error(frames)?.reason, ErrorReason.MODEL_LOAD_FAILED);
  });

  it("disconnect_before_content breaks the stream after the role delta and the Mac reconnects", async () => {
    const { mac, s } = await startMac();
    mac.script({ kind: "disconnect_before_content" });
    s.infer("r", "gpt-oss-20b", chat("hi"));
    await s.until(() => s.ended, 3000, "stream end");
    assert.deepEqual(deltas(s.framesFor("r")), [{ case: "role", value: "assistant" }]);
    assert.equal(error(s.framesFor("r")), undefined);
    const again = await coord.session(2);
    await again.until(() => mac.registrations === 2, 3000, "re-registration");
    assert.equal(again.register?.serial, mac.serial);
  });

  it("role_then_stall sends the role delta and then nothing until cancelled", async () => {
    const { mac, s } = await startMac();
    mac.script({ kind: "role_then_stall" });
    s.infer("r", "gpt-oss-20b", chat("hi"));
    await s.until(() => s.framesFor("r").length > 0, 3000, "role");
    await sleep(100);
    assert.deepEqual(deltas(s.framesFor("r")), [{ case: "role", value: "assistant" }]);
    assert.equal(mac.activeRequests(), 1);
    s.send({ msg: { case: "cancelInference", value: { requestId: "r", reason: "deadline" } } });
    await s.until(() => mac.activeRequests() === 0, 2000, "stalled run released");
    assert.deepEqual(mac.cancelsReceived, ["r"]);
  });

  it("error_after_content streams some content then a 500 error", async () => {
    const { mac, s } = await startMac();
    mac.script({ kind: "error_after_content", afterTokens: 3 });
    s.infer("r", "gpt-oss-20b", chat("hi"));
    const frames = await s.finished("r");
    assert.equal(contentCount(frames), 3);
    assert.equal(error(frames)?.statusCode, 500);
    assert.equal(complete(frames), undefined);
  });

  it("stall_after_content streams some content then nothing", async () => {
    const { mac, s } = await startMac();
    mac.script({ kind: "stall_after_content", afterTokens: 4 });
    s.infer("r", "gpt-oss-20b", chat("hi"));
    await s.until(() => contentCount(s.framesFor("r")) === 4, 3000, "content");
    await sleep(100);
    assert.equal(contentCount(s.framesFor("r")), 4);
    assert.equal(complete(s.framesFor("r")), undefined);
    assert.equal(error(s.framesFor("r")), undefined);
  });

  it("slow_first_token delays the first content by the given real milliseconds", async () => {
    const { mac, s } = await startMac();
    mac.script({ kind: "slow_first_token", delayMs: 150 });
    const t0 = Date.now();
    s.infer("r", "gpt-oss-20b", chat("hi"));
    await s.until(() => contentCount(s.framesFor("r")) > 0, 3000, "content");
    assert.ok(Date.now() - t0 >= 140, `first content after ${Date.now() - t0} ms`);
    assert.equal(complete(await s.finished("r"))?.finishReason, FinishReason.STOP);
  });

  it("tool_call emits id and name, then argument fragments, and finishes with TOOL_CALLS", async () => {
    const { mac, s } = await startMac();
    mac.script({ kind: "tool_call" });
    s.infer("r", "gpt-oss-20b", chat("weather?", { tools: [tool(repairedSchema)] }));
    const frames = await s.finished("r");
    const calls = deltas(frames).flatMap((d) => (d.case === "toolCall" ? [d.value] : []));
    assert.ok(calls[0]!.id.startsWith("call_"));
    assert.equal(calls[0]!.name, "get_weather");
    const args = JSON.parse(calls.map((c) => c.arguments).join("")) as Record<string, unknown>;
    assert.deepEqual(Object.keys(args), ["city", "unit"]);
    const done = complete(frames)!;
    assert.equal(done.finishReason, FinishReason.TOOL_CALLS);
    assert.equal(done.usage?.completionTokens, calls.length);
  });

  it("applies a scripted behaviour only to requests matching its filter", async () => {
    const { mac, s } = await startMac();
    mac.script({ kind: "error_before_content", when: { hasTools: true } });
    s.infer("base", "gpt-oss-20b", chat("hi"));
    assert.ok(complete(await s.finished("base")));
    s.infer("tools", "gpt-oss-20b", chat("hi", { tools: [tool(repairedSchema)] }));
    assert.equal(error(await s.finished("tools"))?.statusCode, 500);
    s.infer("after", "gpt-oss-20b", chat("hi", { tools: [tool(repairedSchema)] }));
    assert.ok(complete(await s.finished("after")));
  });

  it("draws behaviours from per-Mac probabilities", async () => {
    const { s } = await startMac({ failures: { probabilities: { error_after_content: 1 } } });
    s.infer("r", "gpt-oss-20b", chat("hi"));
    const frames = await s.finished("r");
    assert.equal(contentCount(frames), 5);
    assert.equal(error(frames)?.statusCode, 500);
  });

  it("crashes in the template on a nullable tool schema below the version floor", async () => {
    const { s } = await startMac({ version: "0.6.2", failures: { templateCrashOnNullableToolsBelow: "0.6.3" } });
    s.infer("r", "gpt-oss-20b", chat("hi", { tools: [tool(nullableSchema)] }));
    const frames = await s.finished("r");
    assert.equal(contentCount(frames), 0);
    assert.equal(error(frames)?.statusCode, 500);
    assert.equal(error(frames)?.reason, ErrorReason.TEMPLATE);
    s.infer("repaired", "gpt-oss-20b", chat("hi", { tools: [tool(repairedSchema)] }));
    assert.ok(complete(await s.finished("repaired")), "a repaired schema renders on the old build");
  });

  it("renders nullable tool schemas at or above the version floor", async () => {
    const { s } = await startMac({ version: "0.6.3", failures: { templateCrashOnNullableToolsBelow: "0.6.3" } });
    s.infer("r", "gpt-oss-20b", chat("hi", { tools: [tool(nullableSchema)] }));
    assert.ok(complete(await s.finished("r")));
  });

  it("fails every request for a model whose template_render_ok is false", async () => {
    const { s } = await startMac({ models: [{ id: "gpt-oss-20b", templateRenderOk: false }] });
    assert.equal(s.register?.models[0]?.templateRenderOk, false);
    s.infer("r", "gpt-oss-20b", chat("hi"));
    assert.equal(error(await s.finished("r"))?.reason, ErrorReason.TEMPLATE);
  });

  it("advertises an isVision override and fails image requests on a text-only build", async () => {
    const { s } = await startMac({
      models: ["gpt-oss-20b", { id: "gemma-4-26b", isVision: false }],
      warmModels: ["gemma-4-26b"],
    });
    assert.equal(s.register?.models.find((m) => m.id === "gemma-4-26b")?.isVision, false);
    const image = {
      role: "user",
      content: [
        { type: "text", text: "what is this?" },
        { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
      ],
    };
    s.infer("r", "gemma-4-26b", { model: "gemma-4-26b", messages: [image] });
    const frames = await s.finished("r");
    assert.equal(contentCount(frames), 0);
    assert.equal(error(frames)?.statusCode, 500);
  });
});
