/**
 * Tool-schema repair and vision routing end to end, through the official clients:
 * - a Pydantic-style nullable tool schema reaches an old provider build that crashes its chat template on
 *   such schemas (failure injection) and succeeds, in each of the three tool homes;
 * - an image request to a text-only model fails fast with 503, and one to a vision build succeeds, routed
 *   past a text-only build of the same model.
 */
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { hasNullableOrUntypedSchema } from "../../../src/tools/fleet/sim-request.js";
import type { SimulatedMac } from "../../../src/tools/fleet/simulated-mac.js";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";

/** What Pydantic emits for `Optional[str]` fields and an untyped `Any` field. */
const pydanticParameters = {
  type: "object",
  properties: {
    query: { type: "string" },
    language: { type: ["string", "null"], default: null },
    limit: { anyOf: [{ type: "integer" }, { type: "null" }], default: null },
    extra: { description: "anything" },
    filters: { type: "object", properties: { tag: { type: ["string", "null"] } } },
  },
  required: ["query"],
};

/** A 1×1 PNG as a data URL. */
const PNG_1PX =
  "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

describe("tool-schema repair and vision routing through the SDKs", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  let openai: OpenAI;
  let anthropic: Anthropic;
  let oldMac: SimulatedMac;
  let visionMac: SimulatedMac;
  let textOnlyGemma: SimulatedMac;

  before(async () => {
    t = await startTestCoordinator({
      macs: [
        // The only gpt-oss-20b provider: a build that crashes its chat template on nullable/untyped schemas.
        {
          version: "0.6.0",
          failures: { templateCrashOnNullableToolsBelow: "0.6.3" },
          naturalTokens: { min: 5, max: 15 },
        },
        // Two builds of gemma-4-26b: one with the vision tower, one without.
        { models: ["gemma-4-26b"], warmModels: ["gemma-4-26b"], naturalTokens: { min: 5, max: 15 } },
        {
          models: [{ id: "gemma-4-26b", isVision: false }],
          warmModels: ["gemma-4-26b"],
          naturalTokens: { min: 5, max: 15 },
        },
      ],
    });
    [oldMac, visionMac, textOnlyGemma] = t.macs as [SimulatedMac, SimulatedMac, SimulatedMac];
    openai = new OpenAI({ baseURL: t.apiBase, apiKey: t.apiKey, maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: t.baseUrl, apiKey: t.apiKey, maxRetries: 0 });
  });
  after(async () => t?.close());

  /** The records `mac` added while `fn` ran. */
  async function recordsDuring<T>(
    mac: SimulatedMac,
    fn: () => Promise<T>,
  ): Promise<{ result: T; records: SimulatedMac["records"] }> {
    const before = mac.records.length;
    const result = await fn();
    return { result, records: mac.records.slice(before) };
  }

  it("uses a schema the old build's template cannot render unrepaired", () => {
    assert.equal(hasNullableOrUntypedSchema([{ name: "search", parameters: pydanticParameters }]), true);
    assert.equal(oldMac.version, "0.6.0");
  });

  it("serves a chat request with a Pydantic nullable tool schema on a provider build that crashes on it unrepaired", async () => {
    oldMac.script({ kind: "tool_call" });
    const { result, records } = await recordsDuring(oldMac, () =>
      openai.chat.completions.create({
        model: "gpt-oss-20b",
        max_tokens: 64,
        tools: [{ type: "function", function: { name: "search", parameters: pydanticParameters } }],
        messages: [{ role: "user", content: "Search for rivers" }],
      }),
    );
    assert.equal(result.choices[0]!.finish_reason, "tool_calls");
    const call = result.choices[0]!.message.tool_calls?.[0];
    assert.ok(call && call.type === "function" && call.function.name === "search");
    assert.equal(typeof (JSON.parse(call.function.arguments) as { query: unknown }).query, "string");
    assert.deepEqual(
      records.map((r) => [r.behaviour, r.outcome]),
      [["tool_call", "completed"]],
      "the old build ran it once, with no template error and no retry",
    );
  });

  it("serves the same schema in the Responses flat tool shape and as an Anthropic input_schema", async () => {
    const { result: resp, records: r1 } = await recordsDuring(oldMac, () =>
      openai.responses.create({
        model: "gpt-oss-20b",
        input: "Search for stones",
        max_output_tokens: 64,
        tools: [{ type: "function", name: "search", strict: false, parameters: pydanticParameters }],
      }),
    );
    assert.equal(resp.status, "completed");
    assert.ok(resp.output_text.length > 0);
    assert.deepEqual(
      r1.map((r) => r.outcome),
      ["completed"],
    );

    const { result: msg, records: r2 } = await recordsDuring(oldMac, () =>
      anthropic.messages.create({
        model: "gpt-oss-20b",
        max_tokens: 64,
        tools: [{ name: "search", input_schema: pydanticParameters as Anthropic.Tool.InputSchema }],
        messages: [{ role: "user", content: "Search for gardens" }],
      }),
    );
    assert.equal(msg.stop_reason, "end_turn");
    assert.deepEqual(
      r2.map((r) => r.outcome),
      ["completed"],
    );
  });

  it("refuses an image for a text-only model with 400 in well under a second, before any provider sees it", async () => {
    const received = oldMac.requestsReceived.length;
    const t0 = performance.now();
    await assert.rejects(
      openai.chat.completions.create({
        model: "gpt-oss-20b",
        max_tokens: 16,
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "What is this?" },
              { type: "image_url", image_url: { url: PNG_1PX } },
            ],
          },
        ],
      }),
      (e) => {
        // A BadRequestError: the SDK does not retry it (a 503 it would retry, for nothing).
        assert.ok(e instanceof OpenAI.BadRequestError);
        assert.equal(e.code, "image_input_not_supported");
        assert.match(e.message, /does not accept image input/);
        return true;
      },
    );
    const ms = performance.now() - t0;
    assert.ok(ms < 300, `refused in ${ms.toFixed(0)} ms`);
    assert.equal(oldMac.requestsReceived.length, received, "no provider was tried");
  });

  it("routes an image request to the vision build of gemma-4-26b, never to its text-only build", async () => {
    const vision = (await openai.models.retrieve("gemma-4-26b")) as OpenAI.Model & { input_modalities?: string[] };
    assert.deepEqual(vision.input_modalities, ["text", "image"], "the catalog marks gemma-4-26b as a vision model");
    const textOnlyBefore = textOnlyGemma.requestsReceived.length;
    for (let i = 0; i < 3; i++) {
      const { result, records } = await recordsDuring(visionMac, () =>
        openai.chat.completions.create({
          model: "gemma-4-26b",
          max_tokens: 32,
          messages: [
            {
              role: "user",
              content: [
                { type: "text", text: `Describe image ${i}` },
                { type: "image_url", image_url: { url: PNG_1PX } },
              ],
            },
          ],
        }),
      );
      assert.ok((result.choices[0]!.message.content ?? "").length > 0);
      assert.deepEqual(
        records.map((r) => r.outcome),
        ["completed"],
      );
    }
    assert.equal(textOnlyGemma.requestsReceived.length, textOnlyBefore, "the text-only build never got an image");

    const m = await anthropic.messages.create({
      model: "gemma-4-26b",
      max_tokens: 32,
      messages: [
        {
          role: "user",
          content: [
            { type: "image", source: { type: "base64", media_type: "image/png", data: PNG_1PX.split(",")[1]! } },
            { type: "text", text: "What is in the picture?" },
          ],
        },
      ],
    });
    assert.equal(m.content[0]?.type, "text");
    assert.equal(textOnlyGemma.requestsReceived.length, textOnlyBefore);
  });

  describe("without repair (control)", () => {
    let bare: TestCoordinator;
    before(async () => {
      bare = await startTestCoordinator({
        macs: [{ version: "0.6.0", failures: { templateCrashOnNullableToolsBelow: "0.6.3" } }],
      });
    });
    after(async () => bare?.close());

    it("the injected crash is real: a nullable schema the repair declines to rewrite fails on the old build with 502", async () => {
      // The repair leaves a tools section holding a number beyond 15 significant digits untouched (re-serializing
      // it could change the value), so this nullable schema reaches the provider exactly as sent.
      const body =
        `{"model":"gpt-oss-20b","max_tokens":16,"messages":[{"role":"user","content":"x"}],` +
        `"tools":[{"type":"function","function":{"name":"search","parameters":{"type":"object","properties":` +
        `{"id":{"type":["integer","null"],"maximum":12345678901234567891}}}}}]}`;
      const r = await fetch(`${bare.apiBase}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${bare.apiKey}`, "content-type": "application/json" },
        body,
      });
      assert.equal(r.status, 502);
      const j = (await r.json()) as { error: { message: string } };
      assert.match(j.error.message, /chat template crashed/);
      assert.deepEqual(
        bare.macs[0]!.records.map((x) => [x.behaviour, x.outcome]),
        [["error_before_content", "failed"]],
      );
    });
  });
});
