/**
 * Shape-keyed cooldowns and capability gates, end to end: real coordinator, simulated Macs over gRPC.
 */
import assert from "node:assert/strict";
import { promptBytesUpperBound } from "../../src/dialects/index.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { postJson } from "../support/http.js";

const tool = {
  type: "function",
  function: {
    name: "lookup",
    description: "Look something up",
    parameters: { type: "object", properties: { q: { type: "string" } }, required: ["q"] },
  },
};

function chat(extra: Record<string, unknown> = {}) {
  return { model: "gpt-oss-20b", max_tokens: 16, messages: [{ role: "user", content: "hello" }], ...extra };
}

const toolsChat = () => chat({ tools: [tool] });

describe("breakers and capability gates", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  afterEach(async () => t?.close());

  it("cools (provider, model, tools) after two 500s while base traffic still routes there; a base success does not clear it; re-registration does", async () => {
    t = await startTestCoordinator({
      macs: [
        {
          failures: {
            script: [
              { kind: "error_before_content", statusCode: 500, when: { hasTools: true } },
              { kind: "error_before_content", statusCode: 500, when: { hasTools: true } },
            ],
          },
        },
      ],
    });
    const mac = t.macs[0]!;
    const url = `${t.apiBase}/chat/completions`;
    for (let i = 0; i < 2; i++) {
      const r = await postJson(url, t.apiKey, toolsChat());
      assert.equal(r.status, 502, `tools request ${i + 1} fails: its only provider is sick`);
    }
    const firstId = mac.providerId!;
    assert.ok(t.coordinator.health.isCooledDown(firstId, "gpt-oss-20b", "tools", Date.now()));

    const cooled = await postJson(url, t.apiKey, toolsChat());
    assert.equal(cooled.status, 503, "the cooled pair is not routed tools traffic");
    assert.ok(cooled.elapsedMs < 1_000, "and the answer is immediate");

    const base = await postJson(url, t.apiKey, chat());
    assert.equal(base.status, 200, "base traffic still routes to the same provider");
    assert.equal(
      (await postJson(url, t.apiKey, toolsChat())).status,
      503,
      "a base success does not clear the tools cooldown",
    );

    const reRegistered = new Promise<void>((resolve) => mac.once("registered", () => resolve()));
    mac.dropConnection();
    await reRegistered;
    await t.waitForProviders(1);
    assert.equal(mac.providerId, firstId, "the machine keeps its opaque id across sessions");
    assert.ok(
      !t.coordinator.health.isCooledDown(firstId, "gpt-oss-20b", "tools", Date.now()),
      "a fresh session starts without the cooldown",
    );
    const after = await postJson(url, t.apiKey, toolsChat());
    assert.equal(after.status, 200, "re-registration starts the provider clean");
  });

  it("fences a build whose chat template is broken (template_render_ok=false) for every request shape", async () => {
    t = await startTestCoordinator({ macs: [{ models: [{ id: "gpt-oss-20b", templateRenderOk: false }] }] });
    for (const body of [chat(), toolsChat()]) {
      const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, body);
      assert.equal(r.status, 503);
      assert.ok(r.elapsedMs < 1_000);
      assert.equal(t.macs[0]!.requestsReceived.length, 0, "nothing reached the fenced build");
    }
  });

  it("routes tool requests to providers below the version floor only because schemas are repaired centrally (TOOLS_FLOOR_WAIVED)", async () => {
    t = await startTestCoordinator({
      macs: [{ version: "0.6.0", failures: { templateCrashOnNullableToolsBelow: "0.6.3" } }],
    });
    const nullable = {
      type: "function",
      function: {
        name: "search",
        parameters: { type: "object", properties: { q: { type: ["string", "null"] }, limit: {} } },
      },
    };
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat({ tools: [nullable] }));
    assert.equal(r.status, 200, "the repaired schema does not crash the old build");
    assert.ok(
      t.macs[0]!.records.every((rec) => rec.outcome === "completed"),
      JSON.stringify(t.macs[0]!.records),
    );
  });

  it("refuses tool requests at once when only builds below the floor are connected and the floor is enforced", async () => {
    t = await startTestCoordinator({ config: { toolsFloorWaived: false }, macs: [{ version: "0.6.0" }] });
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, toolsChat());
    assert.equal(r.status, 503);
    assert.ok(r.elapsedMs < 1_000);
    assert.match(JSON.stringify(r.events.length ? r.events : JSON.parse(r.text)), /tool/i);
    assert.equal(
      (await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat())).status,
      200,
      "base requests still route there",
    );
  });

  it("fails a vision request fast with 503 when the model has vision builds but none is connected", async () => {
    // gemma-4-26b takes images, but the only connected build is text-only: retryable, a vision build may connect.
    t = await startTestCoordinator({
      macs: [{ models: [{ id: "gemma-4-26b", isVision: false }], warmModels: ["gemma-4-26b"] }],
    });
    const body = {
      model: "gemma-4-26b",
      max_tokens: 16,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "what is this?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
          ],
        },
      ],
    };
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, body);
    assert.equal(r.status, 503);
    assert.ok(r.elapsedMs < 500, `answered in ${Math.round(r.elapsedMs)} ms`);
    assert.match((JSON.parse(r.text) as { error: { message: string } }).error.message, /vision/i);
    // Refused before the rate limiter, yet the caller still sees its limits, and nothing was charged for it.
    const remaining = (x: typeof r) => Number(x.headers.get("x-ratelimit-remaining-requests"));
    assert.ok(Number(r.headers.get("x-ratelimit-limit-requests")) > 0);
    const again = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, body);
    assert.equal(again.status, 503);
    assert.ok(remaining(again) >= remaining(r), `remaining ${remaining(r)} then ${remaining(again)}`);
  });

  it("answers images sent to a text-only model with 400 at once (the caller's mistake, not worth retrying)", async () => {
    t = await startTestCoordinator();
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
      model: "gpt-oss-20b",
      max_tokens: 16,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "what is this?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
          ],
        },
      ],
    });
    assert.equal(r.status, 400, r.text);
    const body = JSON.parse(r.text) as { error: { message: string; param: string; code: string } };
    assert.equal(body.error.param, "messages");
    assert.equal(body.error.code, "image_input_not_supported");
    assert.match(body.error.message, /does not accept image input/);
  });

  it("budgets a max_tokens beyond the model's context as the context instead of waiting for a Mac that could hold it", async () => {
    t = await startTestCoordinator();
    // A ~10k-token prompt: what the context leaves for output is ~121k tokens, and only that is reserved.
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
      model: "gpt-oss-20b",
      max_tokens: 100_000_000,
      messages: [{ role: "user", content: "word ".repeat(8_000) }],
    });
    assert.equal(r.status, 200, r.text);
    assert.ok(r.elapsedMs < 5_000, `answered in ${Math.round(r.elapsedMs)} ms`);
    await t.coordinator.ledger.flush();
    const row = await t.db.db
      .selectFrom("ledger_requests")
      .select("reserved_micro_usd")
      .where("request_id", "=", r.headers.get("x-request-id")!)
      .executeTakeFirstOrThrow();
    // gpt-oss-20b: 0.05 µUSD per input token, 0.2 per output token, context 131,072. Reserving the whole context
    // as output on top of the prompt (reserved at its UTF-8 bytes) would reach this bound; reserving the room the
    // prompt leaves does not.
    const promptUpper = promptBytesUpperBound([{ role: "user", content: "word ".repeat(8_000) }]);
    const wholeContextAsOutput = Math.ceil((promptUpper * 50_000) / 1e6) + Math.ceil((131_072 * 200_000) / 1e6);
    assert.ok(Number(row.reserved_micro_usd) < wholeContextAsOutput, `reserved ${row.reserved_micro_usd} µUSD`);
  });
});
