/**
 * Per-request bounds at parse time (issue 13, item 1): JSON depth, array length, object members and string
 * length on the raw body, then messages, tools, images and caller ids. Each is tested at its default, at the
 * limit (served) and one past it (a 400 `invalid_request_error` naming the limit), and deep nesting answers 400
 * on every POST route instead of 500.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../src/config/config.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { postJson } from "../support/http.js";

const defaults = loadConfig({});

/** `{"a":{"a":...{"a":0}}}` with `levels` objects. */
function nested(levels: number): unknown {
  let v: unknown = 0;
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
}

describe("request limits", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  before(async () => {
    t = await startTestCoordinator({ macs: [{}] });
  });
  after(async () => t?.close());

  const count = (body: Record<string, unknown>) =>
    postJson(`${t.baseUrl}/v1/messages/count_tokens`, t.apiKey, {
      model: "gpt-oss-20b",
      messages: [{ role: "user", content: "hi" }],
      ...body,
    });
  const refusedFor = (r: { status: number; text: string }, pattern: RegExp) => {
    assert.equal(r.status, 400, r.text);
    const e = JSON.parse(r.text) as { type: string; error: { type: string; message: string } };
    assert.equal(e.type, "error");
    assert.equal(e.error.type, "invalid_request_error");
    assert.match(e.error.message, pattern);
  };

  describe("nesting", () => {
    // The finding: tools[0].function.parameters nested 5,000 times, ~8.5 KB per body (written as text: even
    // JSON.stringify cannot serialise it).
    const deep = "__DEEP__";
    const deepText = `${'{"a":'.repeat(5_000)}0${"}".repeat(5_000)}`;
    const bodies: Record<string, Record<string, unknown>> = {
      "/v1/chat/completions": {
        model: "gpt-oss-20b",
        messages: [{ role: "user", content: "hi" }],
        tools: [{ type: "function", function: { name: "f", parameters: deep } }],
      },
      "/v1/completions": {
        model: "gpt-oss-20b",
        prompt: "hi",
        tools: [{ type: "function", function: { name: "f", parameters: deep } }],
      },
      "/v1/responses": {
        model: "gpt-oss-20b",
        input: "hi",
        tools: [{ type: "function", name: "f", parameters: deep }],
      },
      "/v1/messages": {
        model: "gpt-oss-20b",
        max_tokens: 8,
        messages: [{ role: "user", content: "hi" }],
        tools: [{ name: "f", input_schema: deep }],
      },
      "/v1/messages/count_tokens": {
        model: "gpt-oss-20b",
        messages: [{ role: "user", content: "hi" }],
        tools: [{ name: "f", input_schema: deep }],
      },
    };
    for (const [path, body] of Object.entries(bodies)) {
      it(`answers a body nested 5,000 deep on ${path} with 400 naming the depth limit, not 500`, async () => {
        const res = await fetch(`${t.baseUrl}${path}`, {
          method: "POST",
          headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
          body: JSON.stringify(body).replace(`"${deep}"`, deepText),
        });
        const r = { status: res.status, text: await res.text() };
        assert.equal(r.status, 400, r.text);
        const j = JSON.parse(r.text) as { error: { type: string; message: string; code?: string } };
        assert.equal(j.error.type, "invalid_request_error");
        assert.match(j.error.message, /nesting is deeper than 64 levels/);
        if (!path.startsWith("/v1/messages")) assert.equal(j.error.code, "request_limit_exceeded");
      });
    }

    it(`serves a body exactly MAX_JSON_DEPTH (${defaults.maxJsonDepth}) deep and refuses one level more`, async () => {
      // The body is level 1; `x` holds the rest.
      assert.equal((await count({ x: nested(defaults.maxJsonDepth - 1) })).status, 200);
      refusedFor(await count({ x: nested(defaults.maxJsonDepth) }), /deeper than 64 levels/);
    });
  });

  it(`serves an array of MAX_JSON_ARRAY_LENGTH (${defaults.maxJsonArrayLength}) elements and refuses one more`, async () => {
    assert.equal((await count({ x: new Array(defaults.maxJsonArrayLength).fill(0) })).status, 200);
    refusedFor(
      await count({ x: new Array(defaults.maxJsonArrayLength + 1).fill(0) }),
      /array has more than 100000 elements/,
    );
  });

  it(`serves an object of MAX_JSON_OBJECT_KEYS (${defaults.maxJsonObjectKeys}) members and refuses one more`, async () => {
    const obj = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 0]));
    assert.equal((await count({ x: obj(defaults.maxJsonObjectKeys) })).status, 200);
    refusedFor(await count({ x: obj(defaults.maxJsonObjectKeys + 1) }), /object has more than 10000 members/);
  });

  it(`serves a string of MAX_JSON_STRING_CHARS (${defaults.maxJsonStringChars}) characters and refuses one more`, async () => {
    assert.equal((await count({ x: "y".repeat(defaults.maxJsonStringChars) })).status, 200);
    refusedFor(
      await count({ x: "y".repeat(defaults.maxJsonStringChars + 1) }),
      /string is longer than 8388608 characters/,
    );
  });

  it(`serves MAX_REQUEST_MESSAGES (${defaults.maxRequestMessages}) messages and refuses one more, naming messages`, async () => {
    const messages = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ role: i % 2 === 0 ? "user" : "assistant", content: "m" }));
    assert.equal((await count({ messages: messages(defaults.maxRequestMessages) })).status, 200);
    refusedFor(
      await count({ messages: messages(defaults.maxRequestMessages + 1) }),
      /too many messages: 10001 \(limit 10000\)/,
    );
    // The OpenAI routes name the parameter.
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
      model: "gpt-oss-20b",
      messages: messages(defaults.maxRequestMessages + 1),
    });
    assert.equal(r.status, 400);
    assert.deepEqual(JSON.parse(r.text).error.param, "messages");
  });

  it(`counts tool calls against MAX_REQUEST_MESSAGES (${defaults.maxRequestMessages}) too: one assistant turn holding them all`, async () => {
    // Responses merges consecutive function_call items into one assistant message, so the message limit never
    // counted them (100,000 items were also a 52 s parse before it appended in place).
    const uses = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ type: "tool_use", id: `c${i}`, name: "f", input: {} }));
    const turn = (n: number) => [
      { role: "user", content: "go" },
      { role: "assistant", content: uses(n) },
    ];
    assert.equal((await count({ messages: turn(defaults.maxRequestMessages) })).status, 200);
    refusedFor(
      await count({ messages: turn(defaults.maxRequestMessages + 1) }),
      /too many tool calls: 10001 \(limit 10000\)/,
    );
    const items = Array.from({ length: defaults.maxRequestMessages + 1 }, (_, i) => ({
      type: "function_call",
      call_id: `c${i}`,
      name: "f",
      arguments: "{}",
    }));
    const r = await postJson(`${t.apiBase}/responses`, t.apiKey, { model: "gpt-oss-20b", input: items });
    assert.equal(r.status, 400, r.text);
    assert.match(JSON.parse(r.text).error.message, /too many tool calls: 10001 \(limit 10000\)/);
  });

  it(`serves MAX_REQUEST_TOOLS (${defaults.maxRequestTools}) tools and refuses one more, naming tools`, async () => {
    const tools = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ name: `f${i}`, input_schema: { type: "object" } }));
    assert.equal((await count({ tools: tools(defaults.maxRequestTools) })).status, 200);
    refusedFor(await count({ tools: tools(defaults.maxRequestTools + 1) }), /too many tools: 129 \(limit 128\)/);
  });

  it("serves a tool named with 256 characters and refuses 257 or a control character (the provider wire rule) instead of getting Macs disconnected", async () => {
    // Found by the fuzz suite: a Mac forced to call a declared tool streams its name back, and a name past the
    // provider edge's bound ended each honest Mac's session in turn, answering 502.
    const call = (name: string) =>
      postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
        model: "gpt-oss-20b",
        max_tokens: 16,
        messages: [{ role: "user", content: "weather?" }],
        tools: [{ type: "function", function: { name, parameters: { type: "object" } } }],
        tool_choice: "required",
      });
    const served = await call("f".repeat(256));
    assert.equal(served.status, 200, served.text);
    for (const name of ["f".repeat(257), "get\u0000weather", "line\nbreak"]) {
      const refused = await call(name);
      assert.equal(refused.status, 400, refused.text);
      assert.equal(JSON.parse(refused.text).error.param, "tools");
    }
    assert.equal(t.coordinator.registry.size, 1, "the Mac kept its session");
  });

  it(`serves MAX_REQUEST_IMAGES (${defaults.maxRequestImages}) images and refuses one more`, async () => {
    const image = { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } };
    const withImages = (n: number) => ({
      messages: [{ role: "user", content: [...new Array(n).fill(image), { type: "text", text: "what?" }] }],
    });
    assert.equal((await count(withImages(defaults.maxRequestImages))).status, 200);
    refusedFor(await count(withImages(defaults.maxRequestImages + 1)), /too many images: 101 \(limit 100\)/);
  });

  describe("caller ids", () => {
    const max = defaults.maxUserFieldChars;
    const cases: [string, string, (v: string) => Record<string, unknown>][] = [
      ["/v1/chat/completions", "user", (v) => ({ user: v })],
      ["/v1/chat/completions", "prompt_cache_key", (v) => ({ prompt_cache_key: v })],
      ["/v1/responses", "safety_identifier", (v) => ({ safety_identifier: v })],
      ["/v1/messages", "metadata.user_id", (v) => ({ metadata: { user_id: v } })],
    ];
    const base: Record<string, Record<string, unknown>> = {
      "/v1/chat/completions": { model: "gpt-oss-20b", max_tokens: 4, messages: [{ role: "user", content: "hi" }] },
      "/v1/responses": { model: "gpt-oss-20b", max_output_tokens: 4, input: "hi" },
      "/v1/messages": { model: "gpt-oss-20b", max_tokens: 4, messages: [{ role: "user", content: "hi" }] },
    };
    for (const [path, param, field] of cases) {
      it(`serves a ${param} of MAX_USER_FIELD_CHARS (${max}) characters on ${path} and refuses one more, naming it`, async () => {
        const ok = await postJson(`${t.baseUrl}${path}`, t.apiKey, { ...base[path], ...field("u".repeat(max)) });
        assert.equal(ok.status, 200, ok.text);
        const refused = await postJson(`${t.baseUrl}${path}`, t.apiKey, {
          ...base[path],
          ...field("u".repeat(max + 1)),
        });
        assert.equal(refused.status, 400, refused.text);
        const e = JSON.parse(refused.text) as { error: { message: string; param?: string } };
        assert.match(e.error.message, new RegExp(`'${param.replace(".", "\\.")}' is longer than ${max} characters`));
        if (!path.startsWith("/v1/messages")) assert.equal(e.error.param, param);
      });
    }
  });
});
