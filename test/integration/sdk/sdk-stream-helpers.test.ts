/**
 * The SDKs' higher-level stream helpers (which validate event order and accumulate state) over the
 * coordinator's streams: reasoning rendered in each dialect's own form, and a failure after content that
 * every SDK surfaces as an error instead of a clean end (an app must never store half an answer as whole).
 */
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { streamText } from "ai";
import OpenAI from "openai";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";

const MODEL = "gpt-oss-20b";

describe("SDK stream helpers: reasoning and failures after content", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  let openai: OpenAI;
  let anthropic: Anthropic;
  let provider: ReturnType<typeof createOpenAICompatible>;

  before(async () => {
    // One Mac emitting gpt-oss-style reasoning before its answer.
    t = await startTestCoordinator({ macs: [{ reasoning: true, naturalTokens: { min: 10, max: 30 } }] });
    openai = new OpenAI({ baseURL: t.apiBase, apiKey: t.apiKey, maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: t.baseUrl, apiKey: t.apiKey, maxRetries: 0 });
    provider = createOpenAICompatible({
      name: "coordinator",
      baseURL: t.apiBase,
      apiKey: t.apiKey,
      includeUsage: true,
    });
  });
  after(async () => t?.close());

  describe("reasoning", () => {
    it("streams chat reasoning as reasoning_content, apart from content", async () => {
      const stream = await openai.chat.completions.create({
        model: MODEL,
        stream: true,
        max_tokens: 256,
        messages: [{ role: "user", content: "Think, then answer" }],
      });
      let reasoning = "";
      let content = "";
      let reasoningAfterContent = false;
      for await (const chunk of stream) {
        const d = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string } | undefined;
        if (d?.reasoning_content) {
          reasoning += d.reasoning_content;
          if (content.length > 0) reasoningAfterContent = true;
        }
        content += d?.content ?? "";
      }
      assert.ok(reasoning.length > 0, "reasoning streamed");
      assert.ok(content.length > 0, "an answer streamed");
      assert.equal(reasoningAfterContent, false, "reasoning precedes the answer");
    });

    it("gives the openai ResponseStream helper a reasoning item and a message it accumulates without complaint", async () => {
      const stream = openai.responses.stream({ model: MODEL, input: "Think, then answer", max_output_tokens: 256 });
      let text = "";
      stream.on("response.output_text.delta", (e) => (text += e.delta));
      const final = await stream.finalResponse();
      assert.equal(final.status, "completed");
      assert.deepEqual(
        final.output.map((o) => o.type),
        ["reasoning", "message"],
      );
      const r = final.output[0]!;
      assert.ok(r.type === "reasoning" && (r.content?.[0]?.text ?? "").length > 0);
      assert.equal(final.output_text, text);
      assert.ok((final.usage?.output_tokens_details.reasoning_tokens ?? 0) > 0);
      assert.ok(final.usage!.output_tokens > final.usage!.output_tokens_details.reasoning_tokens);
    });

    it("streams Anthropic thinking blocks before the text block", async () => {
      const stream = anthropic.messages.stream({
        model: MODEL,
        max_tokens: 256,
        messages: [{ role: "user", content: "Think, then answer" }],
      });
      let thinking = "";
      stream.on("thinking", (d) => (thinking += d));
      const final = await stream.finalMessage();
      assert.deepEqual(
        final.content.map((b) => b.type),
        ["thinking", "text"],
      );
      const b = final.content[0]!;
      assert.ok(b.type === "thinking" && b.thinking === thinking && thinking.length > 0);
    });

    it("gives the ai SDK separate reasoning and text", async () => {
      const r = streamText({
        model: provider(MODEL),
        prompt: "Think, then answer",
        maxOutputTokens: 256,
        maxRetries: 0,
      });
      const [text, reasoningText] = await Promise.all([r.text, r.reasoningText]);
      assert.ok((reasoningText ?? "").length > 0);
      assert.ok(text.length > 0);
      assert.ok(!text.includes(reasoningText!), "reasoning does not leak into the text");
    });
  });

  describe("a provider failure after content", () => {
    const failAfterContent = () => t.macs[0]!.script({ kind: "error_after_content", afterTokens: 3 });

    it("makes the openai chat stream throw APIError after the partial text", async () => {
      failAfterContent();
      const stream = await openai.chat.completions.create({
        model: MODEL,
        stream: true,
        messages: [{ role: "user", content: "x" }],
      });
      let produced = "";
      await assert.rejects(
        (async () => {
          for await (const chunk of stream) {
            const d = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string } | undefined;
            produced += (d?.content ?? "") + (d?.reasoning_content ?? "");
          }
        })(),
        (e) => e instanceof OpenAI.APIError,
      );
      assert.ok(produced.length > 0, "output flowed before the failure");
    });

    it("makes the openai Responses stream throw APIError instead of ending without response.completed", async () => {
      failAfterContent();
      const stream = await openai.responses.create({ model: MODEL, input: "x", stream: true });
      const types: string[] = [];
      await assert.rejects(
        (async () => {
          for await (const ev of stream) types.push(ev.type);
        })(),
        (e) => e instanceof OpenAI.APIError,
      );
      // The Mac fails after three tokens, which may still be reasoning: any delta means output had flowed.
      assert.ok(
        types.some((ty) => ty.endsWith("_text.delta")),
        types.join(","),
      );
      assert.ok(!types.includes("response.completed"));
    });

    it("makes the Anthropic MessageStream reject instead of producing a final message", async () => {
      failAfterContent();
      const stream = anthropic.messages.stream({
        model: MODEL,
        max_tokens: 256,
        messages: [{ role: "user", content: "x" }],
      });
      await assert.rejects(stream.finalMessage(), (e) => e instanceof Anthropic.APIError);
    });

    it("makes the ai SDK report an error and not a clean finish", async () => {
      failAfterContent();
      const errors: unknown[] = [];
      const r = streamText({
        model: provider(MODEL),
        prompt: "x",
        maxRetries: 0,
        onError: ({ error }) => void errors.push(error),
      });
      const parts: string[] = [];
      for await (const p of r.fullStream) parts.push(p.type);
      assert.ok(parts.includes("error"), `parts: ${parts.join(",")}`);
      assert.equal(errors.length, 1);
      const finish = await Promise.resolve(r.finishReason).catch(() => "rejected");
      assert.notEqual(finish, "stop");
    });
  });
});
