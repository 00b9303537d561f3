/**
 * Each official client's typed error classes fire for the coordinator's 401, 404 and 429, in the error shape
 * that client expects (OpenAI `{error:{type,code}}`, Anthropic `{type:"error",error:{type}}`), with
 * `Retry-After` on the 429. The 429 is an honest capacity refusal: one Mac with one slot, held busy by a
 * slow request, and a queue limit of 0.
 */
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { APICallError, generateText, streamText } from "ai";
import OpenAI from "openai";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";

const MODEL = "gpt-oss-20b";
const BAD_KEY = "sk-not-a-key";

describe("typed SDK errors for 401, 404 and 429 (openai, @anthropic-ai/sdk, ai)", function () {
  this.timeout(30_000);
  let t: TestCoordinator;

  before(async () => {
    t = await startTestCoordinator({
      config: { queueLimit: 0 },
      macs: [{ maxConcurrency: 1, naturalTokens: { min: 5, max: 10 } }],
    });
  });
  after(async () => t?.close());

  const openai = (apiKey = t.apiKey) => new OpenAI({ baseURL: t.apiBase, apiKey, maxRetries: 0 });
  const anthropic = (apiKey = t.apiKey) => new Anthropic({ baseURL: t.baseUrl, apiKey, maxRetries: 0 });
  const aiModel = (apiKey = t.apiKey, model = MODEL) =>
    createOpenAICompatible({ name: "coordinator", baseURL: t.apiBase, apiKey })(model);

  /**
   * Runs `fn` while the only slot is taken by a request whose first token is held back; then lets that
   * request finish normally (it must still succeed: the refusal of others does not disturb it).
   */
  async function whileBusy(fn: () => Promise<void>): Promise<void> {
    t.macs[0]!.script({ kind: "slow_first_token", delayMs: 800 });
    const slow = openai().chat.completions.create({
      model: MODEL,
      max_tokens: 8,
      messages: [{ role: "user", content: "hold the slot" }],
    });
    const until = Date.now() + 3000;
    while (!t.coordinator.registry.forModel(MODEL).some((p) => p.inflight.size > 0)) {
      if (Date.now() > until) throw new Error("the slow request never reached the Mac");
      await new Promise((r) => setTimeout(r, 5));
    }
    try {
      await fn();
    } finally {
      const r = await slow;
      assert.ok((r.choices[0]!.message.content ?? "").length > 0, "the request holding the slot completes");
    }
  }

  const retryAfterS = (h: Headers | Record<string, string> | undefined): number => {
    const v = h instanceof Headers ? h.get("retry-after") : h?.["retry-after"];
    return Number(v);
  };

  describe("openai", () => {
    it("raises AuthenticationError (401, authentication_error) for a bad key", async () => {
      await assert.rejects(
        openai(BAD_KEY).chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }] }),
        (e) => {
          assert.ok(e instanceof OpenAI.AuthenticationError);
          assert.equal(e.status, 401);
          assert.equal(e.type, "authentication_error");
          return true;
        },
      );
    });

    it("raises NotFoundError (404, model_not_found) for an unknown model on every endpoint", async () => {
      const c = openai();
      const attempts = [
        c.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }),
        c.completions.create({ model: "no-such-model", prompt: "x" }),
        c.responses.create({ model: "no-such-model", input: "x" }),
      ];
      for (const p of attempts) {
        await assert.rejects(p, (e) => {
          assert.ok(e instanceof OpenAI.NotFoundError);
          assert.equal(e.code, "model_not_found");
          assert.equal(e.param, "model");
          return true;
        });
      }
    });

    it("raises RateLimitError (429) with Retry-After when the only slot is busy and the queue is full, streamed or not", async () => {
      await whileBusy(async () => {
        for (const stream of [false, true]) {
          const t0 = performance.now();
          await assert.rejects(
            openai().chat.completions.create({ model: MODEL, stream, messages: [{ role: "user", content: "x" }] }),
            (e) => {
              assert.ok(e instanceof OpenAI.RateLimitError, String(e));
              assert.equal(e.status, 429);
              assert.equal(e.type, "rate_limit_error");
              const ra = retryAfterS(e.headers);
              assert.ok(Number.isInteger(ra) && ra >= 1 && ra <= 60, `Retry-After ${ra}`);
              return true;
            },
          );
          assert.ok(performance.now() - t0 < 500, "refused at once, not after a wait");
        }
        await assert.rejects(openai().responses.create({ model: MODEL, input: "x" }), OpenAI.RateLimitError);
      });
    });
  });

  describe("@anthropic-ai/sdk", () => {
    it("raises AuthenticationError with Anthropic's error shape for a bad key", async () => {
      await assert.rejects(
        anthropic(BAD_KEY).messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: "user", content: "x" }] }),
        (e) => {
          assert.ok(e instanceof Anthropic.AuthenticationError);
          assert.equal(e.status, 401);
          assert.deepEqual(Object.keys(e.error as object).sort(), ["error", "type"]);
          assert.equal((e.error as { type: string }).type, "error");
          assert.equal((e.error as { error: { type: string } }).error.type, "authentication_error");
          return true;
        },
      );
    });

    it("raises NotFoundError (not_found_error) for an unknown model", async () => {
      await assert.rejects(
        anthropic().messages.create({
          model: "no-such-model",
          max_tokens: 8,
          messages: [{ role: "user", content: "x" }],
        }),
        (e) => {
          assert.ok(e instanceof Anthropic.NotFoundError);
          assert.equal((e.error as { error: { type: string } }).error.type, "not_found_error");
          return true;
        },
      );
    });

    it("raises RateLimitError (rate_limit_error) with Retry-After from create and from a stream", async () => {
      await whileBusy(async () => {
        await assert.rejects(
          anthropic().messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: "user", content: "x" }] }),
          (e) => {
            assert.ok(e instanceof Anthropic.RateLimitError, String(e));
            assert.equal((e.error as { error: { type: string } }).error.type, "rate_limit_error");
            assert.ok(retryAfterS(e.headers) >= 1);
            return true;
          },
        );
        const stream = anthropic().messages.stream({
          model: MODEL,
          max_tokens: 8,
          messages: [{ role: "user", content: "x" }],
        });
        await assert.rejects(stream.finalMessage(), Anthropic.RateLimitError);
      });
    });
  });

  describe("ai SDK (openai-compatible)", () => {
    it("throws APICallError with statusCode 401, not retryable, for a bad key", async () => {
      await assert.rejects(generateText({ model: aiModel(BAD_KEY), prompt: "x", maxRetries: 0 }), (e) => {
        assert.ok(APICallError.isInstance(e), String(e));
        assert.equal(e.statusCode, 401);
        assert.equal(e.isRetryable, false);
        return true;
      });
    });

    it("throws APICallError with statusCode 404 for an unknown model", async () => {
      await assert.rejects(
        generateText({ model: aiModel(t.apiKey, "no-such-model"), prompt: "x", maxRetries: 0 }),
        (e) => {
          assert.ok(APICallError.isInstance(e), String(e));
          assert.equal(e.statusCode, 404);
          assert.match(e.message, /no-such-model/);
          return true;
        },
      );
    });

    it("reports a retryable APICallError 429 with Retry-After, from generateText and from streamText's error part", async () => {
      await whileBusy(async () => {
        await assert.rejects(generateText({ model: aiModel(), prompt: "x", maxRetries: 0 }), (e) => {
          assert.ok(APICallError.isInstance(e), String(e));
          assert.equal(e.statusCode, 429);
          assert.equal(e.isRetryable, true);
          assert.ok(retryAfterS(e.responseHeaders) >= 1);
          return true;
        });
        const errors: unknown[] = [];
        const r = streamText({
          model: aiModel(),
          prompt: "x",
          maxRetries: 0,
          onError: ({ error }) => void errors.push(error),
        });
        for await (const _ of r.textStream) assert.fail("no text is streamed on a refusal");
        assert.equal(errors.length, 1);
        assert.ok(APICallError.isInstance(errors[0]) && errors[0].statusCode === 429);
      });
    });
  });
});
