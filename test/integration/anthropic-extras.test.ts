import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";

describe("Anthropic Messages extras", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  before(async () => {
    t = await startTestCoordinator({ macs: [{}] });
  });
  after(async () => t?.close());

  it("counts input tokens with messages.countTokens, growing with the prompt", async () => {
    const client = new Anthropic({ baseURL: t.baseUrl, apiKey: t.apiKey, maxRetries: 0 });
    const short = await client.messages.countTokens({
      model: "gpt-oss-20b",
      messages: [{ role: "user", content: "hi" }],
    });
    const long = await client.messages.countTokens({
      model: "gpt-oss-20b",
      messages: [{ role: "user", content: "hi ".repeat(400) }],
    });
    assert.ok(short.input_tokens > 0);
    assert.ok(long.input_tokens > short.input_tokens + 200);
    await assert.rejects(
      client.messages.countTokens({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] }),
      Anthropic.NotFoundError,
    );
  });

  it("answers a wrong method on /v1/messages with 405 in the Anthropic error shape", async () => {
    const r = await fetch(`${t.baseUrl}/v1/messages`, { headers: { "x-api-key": t.apiKey } });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get("allow"), "POST");
    const body = (await r.json()) as { type: string; error: { type: string } };
    assert.equal(body.type, "error");
    assert.equal(body.error.type, "invalid_request_error");
  });

  it("exposes the request id the SDK reads, and answers unknown /v1/messages routes in the Anthropic error shape", async () => {
    const client = new Anthropic({ baseURL: t.baseUrl, apiKey: t.apiKey, maxRetries: 0 });
    const m = await client.messages.create({
      model: "gpt-oss-20b",
      max_tokens: 8,
      messages: [{ role: "user", content: "hi" }],
    });
    assert.match(m._request_id ?? "", /^req_/);
    const r = await fetch(`${t.baseUrl}/v1/messages/batches`, { headers: { "x-api-key": t.apiKey } });
    assert.equal(r.status, 404);
    assert.match(r.headers.get("request-id") ?? "", /^req_/, "error answers carry a request id too");
    assert.deepEqual(Object.keys((await r.json()) as object).sort(), ["error", "type"]);
  });
});

describe("Responses object", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  before(async () => {
    t = await startTestCoordinator({ macs: [{}] });
  });
  after(async () => t?.close());

  it("echoes the request's settings (instructions, max_output_tokens, temperature, tools) like OpenAI's", async () => {
    const { default: OpenAI } = await import("openai");
    const client = new OpenAI({ baseURL: `${t.baseUrl}/v1`, apiKey: t.apiKey, maxRetries: 0 });
    const tools = [
      {
        type: "function" as const,
        name: "lookup",
        description: "look up",
        parameters: { type: "object", properties: { q: { type: "string" } } },
        strict: false,
      },
    ];
    const r = await client.responses.create({
      model: "gpt-oss-20b",
      input: "hi",
      instructions: "Be brief.",
      max_output_tokens: 32,
      temperature: 0.2,
      tools,
    });
    assert.equal(r.instructions, "Be brief.");
    assert.equal(r.max_output_tokens, 32);
    assert.equal(r.temperature, 0.2);
    assert.equal(r.tools.length, 1);
    assert.equal((r.tools[0] as { name: string }).name, "lookup");
  });
});
