import assert from "node:assert/strict";
import type { Usage } from "../../../src/inference/types.js";
import {
  COMPLETION_CLAIM_SLACK_TOKENS,
  COMPLETION_TOOL_CALL_TOKENS,
  defendUsage,
  PROMPT_CLAIM_SLACK_TOKENS,
  type DefendUsageInput,
} from "../../../src/usage/defend-usage.js";
import { countPromptTokens } from "../../../src/usage/prompt-tokens.js";
import { countTextTokens } from "../../../src/usage/token-counter.js";
import { tokenizerFamilies } from "../../../src/usage/tokenizer-family.js";

const gptOss = tokenizerFamilies["gpt-oss"];
const gemma = tokenizerFamilies.gemma;
const usage = (promptTokens: number, completionTokens: number, reasoningTokens = 0): Usage => ({
  promptTokens,
  completionTokens,
  reasoningTokens,
});
const base: DefendUsageInput = {
  claimed: usage(100, 50),
  ownPrompt: 100,
  ownCompletion: 50,
  family: gptOss,
  maxTokens: 1_000,
};

describe("defendUsage", () => {
  it("bills an honest claim as claimed", () => {
    const r = defendUsage({ ...base, claimed: usage(104, 52, 20) });
    assert.deepEqual(r.usage, usage(104, 52, 20));
    assert.equal(r.overClaimed, false);
  });

  it("accepts a prompt claim up to own × (1 + tolerance) + slack and replaces one token more with our count", () => {
    const ceiling = 110 + PROMPT_CLAIM_SLACK_TOKENS; // 100 × 1.1, with no float noise
    const at = defendUsage({ ...base, claimed: usage(ceiling, 50) });
    assert.equal(at.usage.promptTokens, ceiling);
    assert.equal(at.detail.promptCeiling, ceiling);
    assert.equal(at.overClaimed, false);
    const over = defendUsage({ ...base, claimed: usage(ceiling + 1, 50) });
    assert.equal(over.usage.promptTokens, 100);
    assert.equal(over.overClaimed, true);
    assert.deepEqual([over.detail.promptOverClaimed, over.detail.completionOverClaimed], [true, false]);
  });

  it("replaces an absurd prompt claim (issue 12: prompt_tokens=1e9) with the coordinator's count", () => {
    const r = defendUsage({ ...base, claimed: usage(1e9, 50) });
    assert.deepEqual(r.usage, usage(100, 50));
    assert.equal(r.overClaimed, true);
  });

  it("accepts under-claims as is: a provider may under-bill itself", () => {
    const r = defendUsage({ ...base, claimed: usage(3, 1) });
    assert.deepEqual(r.usage, usage(3, 1));
    assert.equal(r.overClaimed, false);
  });

  it("scales our completion count by the family before applying its tolerance, and bills the scaled count on replacement", () => {
    // gemma: ceil(100 × 1.12) = 112; ceiling floor(112 × 1.25) + 16 = 156.
    const input = { ...base, family: gemma, ownCompletion: 100 };
    assert.equal(defendUsage({ ...input, claimed: usage(100, 156) }).usage.completionTokens, 156);
    const over = defendUsage({ ...input, claimed: usage(100, 157) });
    assert.deepEqual(
      [over.usage.completionTokens, over.overClaimed, over.detail.ownCompletionScaled, over.detail.completionCeiling],
      [112, true, 112, 156],
    );
  });

  it("allows extra completion tokens per streamed tool call for its markup", () => {
    const ceiling = 55 + COMPLETION_CLAIM_SLACK_TOKENS + 2 * COMPLETION_TOOL_CALL_TOKENS;
    assert.equal(defendUsage({ ...base, toolCalls: 2, claimed: usage(100, ceiling) }).overClaimed, false);
    assert.equal(defendUsage({ ...base, toolCalls: 1, claimed: usage(100, ceiling) }).overClaimed, true);
  });

  it("caps the billed completion at max_tokens without calling that an over-claim, and reasoning at the completion", () => {
    const r = defendUsage({ ...base, ownCompletion: 95, maxTokens: 100, claimed: usage(100, 110, 150) });
    assert.deepEqual(r.usage, usage(100, 100, 100));
    assert.equal(r.overClaimed, false);
    assert.equal(r.detail.clampedToMaxTokens, true);
    const replaced = defendUsage({
      ...base,
      family: gemma,
      ownCompletion: 100,
      maxTokens: 100,
      claimed: usage(100, 10_000, 10_000),
    });
    assert.deepEqual(
      [replaced.usage.completionTokens, replaced.usage.reasoningTokens, replaced.overClaimed],
      [100, 100, true],
    );
  });

  it("treats non-finite claims as over-claims and negative ones as zero, so a claim never credits the consumer", () => {
    const nan = defendUsage({ ...base, claimed: usage(Number.NaN, Number.POSITIVE_INFINITY, Number.NaN) });
    assert.deepEqual(nan.usage, usage(100, 50, 50));
    assert.equal(nan.overClaimed, true);
    const negative = defendUsage({ ...base, claimed: usage(-5, -1, -3) });
    assert.deepEqual(negative.usage, usage(0, 0, 0));
    assert.equal(negative.overClaimed, false);
    assert.deepEqual(defendUsage({ ...base, claimed: usage(10.9, 5.5, 1.2) }).usage, usage(10, 5, 1));
  });

  it("accepts the honest count of a gpt-oss harmony-rendered chat, template tokens included", () => {
    // What the provider tokenizes for "hi": the harmony system message the template injects, the user turn and
    // the generation prompt. Each <|...|> marker is one special token.
    const system =
      "You are ChatGPT, a large language model trained by OpenAI.\nKnowledge cutoff: 2024-06\nCurrent date: 2025-08-06\n\nReasoning: medium\n\n# Valid channels: analysis, commentary, final. Channel must be included for every message.";
    const honestPrompt = 4 + countTextTokens(system) + 4 + countTextTokens("hi") + 2; // <|start|>system<|message|>…<|end|>, user turn, <|start|>assistant
    const reasoning = "User says hi. Respond.";
    const answer = "Hello! How can I help?";
    const honestCompletion = countTextTokens(reasoning) + countTextTokens(answer) + 10; // analysis/final channel headers, <|end|>, <|return|>
    const ownPrompt = countPromptTokens({ messages: [{ role: "user", content: "hi" }] }, gptOss);
    const ownCompletion = countTextTokens(reasoning) + countTextTokens(answer);
    const r = defendUsage({
      claimed: usage(honestPrompt, honestCompletion, 10),
      ownPrompt,
      ownCompletion,
      family: gptOss,
      maxTokens: 8_192,
    });
    assert.equal(r.overClaimed, false, JSON.stringify(r.detail));
    assert.deepEqual(r.usage, usage(honestPrompt, honestCompletion, 10));
  });
});
