/**
 * Issue 13, item 7: a wrong method is 405 with `Allow` on every route, and every error on a route is in that
 * route's dialect (Anthropic under /v1/messages, OpenAI elsewhere).
 */
import assert from "node:assert/strict";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";

describe("route methods and error shapes", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  before(async () => {
    t = await startTestCoordinator({ macs: [{}] });
  });
  after(async () => t?.close());

  const call = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${t.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
    const text = await r.text();
    return {
      status: r.status,
      headers: r.headers,
      text,
      json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
    };
  };
  const isAnthropic = (j: unknown) =>
    (j as { type?: string }).type === "error" && typeof (j as { error: { type: string } }).error.type === "string";
  const isOpenAI = (j: unknown) =>
    typeof (j as { error?: { code?: unknown } }).error?.code === "string" &&
    (j as { type?: string }).type === undefined;

  const routes: [string, string, string[], "openai" | "anthropic"][] = [
    ["/v1/chat/completions", "POST", ["GET", "PUT", "DELETE"], "openai"],
    ["/v1/completions", "POST", ["GET", "DELETE"], "openai"],
    ["/v1/responses", "POST", ["GET", "DELETE"], "openai"],
    ["/v1/messages", "POST", ["GET", "DELETE"], "anthropic"],
    ["/v1/messages/count_tokens", "POST", ["GET", "DELETE"], "anthropic"],
    ["/v1/models", "GET, HEAD", ["POST", "DELETE"], "openai"],
    ["/v1/models/gpt-oss-20b", "GET, HEAD", ["POST", "DELETE"], "openai"],
    ["/v1/models/capacity", "GET, HEAD", ["POST", "DELETE"], "openai"],
    ["/v1/me/usage", "GET, HEAD", ["POST", "DELETE", "PATCH"], "openai"],
    ["/v1/me/providers", "GET, HEAD", ["POST", "DELETE"], "openai"],
    ["/v1/me/providers/SERIAL-1", "DELETE", ["GET", "POST"], "openai"],
    ["/health", "GET, HEAD", ["POST", "DELETE"], "openai"],
    ["/healthz", "GET, HEAD", ["POST", "DELETE"], "openai"],
  ];
  for (const [path, allow, wrong, shape] of routes) {
    it(`answers ${wrong.join(", ")} on ${path} with 405, Allow: ${allow}, in the ${shape} shape`, async () => {
      for (const method of wrong) {
        const r = await call(method, path);
        assert.equal(r.status, 405, `${method} ${path}`);
        assert.equal(r.headers.get("allow"), allow);
        assert.ok(shape === "anthropic" ? isAnthropic(r.json) : isOpenAI(r.json), `${method} ${path}: ${r.text}`);
      }
    });
  }

  it("still answers the allowed methods (GET and HEAD on read routes)", async () => {
    assert.equal((await call("GET", "/v1/me/usage")).status, 200);
    assert.equal((await call("HEAD", "/v1/models")).status, 200);
    assert.equal((await call("HEAD", "/health")).status, 200);
  });

  it("refuses a count_tokens `stream` that is not a boolean with 400 in the Anthropic shape", async () => {
    const r = await call("POST", "/v1/messages/count_tokens", {
      model: "gpt-oss-20b",
      stream: "yes",
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(r.status, 400, r.text);
    assert.ok(isAnthropic(r.json));
    assert.match(r.text, /'stream' must be a boolean/);
    const ok = await call("POST", "/v1/messages/count_tokens", {
      model: "gpt-oss-20b",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(ok.status, 200);
  });

  it("answers malformed JSON and missing keys in each route's dialect", async () => {
    for (const path of ["/v1/messages", "/v1/messages/count_tokens"]) {
      const bad = await call("POST", path, "{nope");
      assert.equal(bad.status, 400);
      assert.ok(isAnthropic(bad.json), bad.text);
    }
    for (const path of ["/v1/chat/completions", "/v1/completions", "/v1/responses"]) {
      const bad = await call("POST", path, "{nope");
      assert.equal(bad.status, 400);
      assert.ok(isOpenAI(bad.json), bad.text);
    }
    const anon = await fetch(`${t.baseUrl}/v1/messages/count_tokens`, { method: "POST", body: "{}" });
    assert.equal(anon.status, 401);
    assert.ok(isAnthropic(await anon.json()));
  });
});
