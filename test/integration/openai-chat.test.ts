import assert from "node:assert/strict";
import OpenAI from "openai";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { postJson } from "../support/http.js";

describe("OpenAI-compatible chat API (real coordinator, simulated Macs over gRPC, real Postgres)", function () {
  this.timeout(60_000);
  let t: TestCoordinator;
  let client: OpenAI;

  before(async () => {
    t = await startTestCoordinator();
    client = new OpenAI({ baseURL: t.apiBase, apiKey: t.apiKey, maxRetries: 0 });
  });
  after(async () => t?.close());

  it("streams a chat completion with usage on the final chunk and one [DONE]", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-oss-20b",
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 40,
      messages: [{ role: "user", content: "Say hello" }],
    });
    let text = "";
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | undefined | null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? "";
      finish ??= chunk.choices[0]?.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.ok(text.length > 0, "streamed some content");
    assert.ok(chunks > 2);
    assert.ok(finish === "stop" || finish === "length");
    assert.ok(usage && usage.completion_tokens > 0 && usage.completion_tokens <= 40);
    assert.equal(usage!.total_tokens, usage!.prompt_tokens + usage!.completion_tokens);
  });

  it("answers a non-streamed chat completion", async () => {
    const r = await client.chat.completions.create({
      model: "gpt-oss-20b",
      max_tokens: 16,
      messages: [{ role: "user", content: "Count to three" }],
    });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices.length, 1);
    assert.ok((r.choices[0]!.message.content ?? "").length > 0);
    assert.ok(r.usage!.completion_tokens > 0 && r.usage!.completion_tokens <= 16);
  });

  it("lists models, including the connected fleet's", async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.ok(ids.includes("gpt-oss-20b"));
    assert.ok(ids.includes("gemma-4-26b"), "catalog models are listed even with no provider connected");
  });

  it("rejects a bad key with 401 in the OpenAI error shape", async () => {
    const bad = new OpenAI({ baseURL: t.apiBase, apiKey: "sk-not-a-key", maxRetries: 0 });
    await assert.rejects(
      bad.chat.completions.create({ model: "gpt-oss-20b", messages: [{ role: "user", content: "x" }] }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.AuthenticationError);
        assert.equal(e.status, 401);
        assert.equal((e.error as { type?: string }).type, "authentication_error");
        return true;
      },
    );
  });

  it("answers 404 for an unknown model", async () => {
    await assert.rejects(
      client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.NotFoundError);
        assert.equal(e.code, "model_not_found");
        return true;
      },
    );
  });

  it("answers 400 for a malformed body, missing fields and n > 1", async () => {
    const post = (body: string) =>
      fetch(`${t.apiBase}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
        body,
      });
    const malformed = await post("{not json");
    assert.equal(malformed.status, 400);
    const j = (await malformed.json()) as { error: { type: string; message: string } };
    assert.equal(j.error.type, "invalid_request_error");
    assert.match(j.error.message, /JSON/);

    const noMessages = await post(JSON.stringify({ model: "gpt-oss-20b" }));
    assert.equal(noMessages.status, 400);
    assert.equal(((await noMessages.json()) as { error: { param: string } }).error.param, "messages");

    await assert.rejects(
      client.chat.completions.create({ model: "gpt-oss-20b", n: 2, messages: [{ role: "user", content: "x" }] }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError);
        return true;
      },
    );
  });

  it("answers 402 when the balance cannot cover the reservation", async () => {
    const accounts = t.coordinator.ledger.accounts;
    const poor = await accounts.createAccount({ name: "poor", tier: "consumer", initialCreditMicroUsd: 10n });
    const { apiKey } = await accounts.issueApiKey({ accountId: poor.id });
    const c = new OpenAI({ baseURL: t.apiBase, apiKey, maxRetries: 0 });
    await assert.rejects(
      c.chat.completions.create({ model: "gpt-oss-20b", max_tokens: 4000, messages: [{ role: "user", content: "x" }] }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.APIError);
        assert.equal(e.status, 402);
        assert.equal(e.code, "insufficient_quota");
        return true;
      },
    );
  });

  it("returns the OpenAI error shape for unknown routes", async () => {
    const r = await fetch(`${t.baseUrl}/v1/nope`);
    assert.equal(r.status, 404);
    const j = (await r.json()) as { error: { type: string; code: string } };
    assert.equal(j.error.code, "unknown_url");
    // A malformed escape in a model id is an unknown model, not a 500.
    const bad = await fetch(`${t.apiBase}/models/%E0`, { headers: { authorization: `Bearer ${t.apiKey}` } });
    assert.equal(bad.status, 404);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, "model_not_found");
  });

  it("lets a browser call the API (CORS): preflight answered, request id and rate limits readable; no CORS headers without an Origin", async () => {
    const pre = await fetch(`${t.apiBase}/chat/completions`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, x-stainless-os",
      },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get("access-control-allow-origin"), "*");
    assert.equal(pre.headers.get("access-control-allow-headers"), "authorization, content-type, x-stainless-os");
    assert.match(pre.headers.get("access-control-allow-methods") ?? "", /POST/);
    const r = await postJson(
      `${t.apiBase}/chat/completions`,
      t.apiKey,
      { model: "gpt-oss-20b", max_tokens: 8, messages: [{ role: "user", content: "hi" }] },
      { headers: { origin: "https://app.example" } },
    );
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("access-control-allow-origin"), "*");
    assert.match(r.headers.get("access-control-expose-headers") ?? "", /x-request-id.*x-ratelimit-remaining-requests/);
    const plain = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
      model: "gpt-oss-20b",
      max_tokens: 8,
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(plain.headers.get("access-control-allow-origin"), null);
  });

  it("serves /health and the public capacity endpoint", async () => {
    const h = (await (await fetch(`${t.baseUrl}/health`)).json()) as { status: string; providers_connected: number };
    assert.equal(h.status, "ok");
    assert.equal(h.providers_connected, 2);
    const c = (await (await fetch(`${t.apiBase}/models/capacity`)).json()) as {
      models: { id: string; routable_providers: number }[];
    };
    assert.equal(c.models.find((m) => m.id === "gpt-oss-20b")?.routable_providers, 2);
  });
});
