/**
 * Decides what usage to bill when a provider's claim is checked against the coordinator's own counts
 * (issue 12, item 1). Pure: the caller bills `usage` and feeds `overClaimed` to the divergence tracker.
 *
 * The asymmetry is deliberate. A claim at or below the ceiling is billed as claimed, under-claims included: a
 * provider may under-bill itself (it only costs that provider), and our counts are estimates for non-o200k
 * models, so preferring ours when lower would under-pay honest providers. A claim above the ceiling is the
 * attack (prompt_tokens=1e9 drains the consumer's reservation and locks them out of the rate limiter), so the
 * field is replaced by our own count and the request is reported as over-claimed.
 */
import type { Usage } from "../inference/types.js";
import type { TokenizerFamily } from "./tokenizer-family.js";

/** Tokens allowed above `ownPrompt × (1 + tolerance)` before a prompt claim is an over-claim. */
export const PROMPT_CLAIM_SLACK_TOKENS = 16;
/**
 * Tokens allowed above the scaled completion count × (1 + tolerance): channel and end-of-turn markers the
 * provider generates but never streams as text (gpt-oss's analysis/final channel headers and <|return|> are ~10).
 */
export const COMPLETION_CLAIM_SLACK_TOKENS = 16;
/** Extra completion allowance per streamed tool call, for its markup (harmony recipient/constrain, Qwen tags). */
export const COMPLETION_TOOL_CALL_TOKENS = 16;

/** Inputs of {@link defendUsage}. */
export interface DefendUsageInput {
  /** What the provider reported in its `complete` event. */
  claimed: Usage;
  /**
   * Our prompt count in the model's tokens, overheads included: `countPromptTokens` (prompt-tokens.ts), already
   * scaled by the family (not scaled again here).
   */
  ownPrompt: number;
  /**
   * Our raw o200k_base count of everything streamed back (content, reasoning, tool-call names and arguments),
   * not yet scaled: scaled here by `family.scale`.
   */
  ownCompletion: number;
  family: TokenizerFamily;
  /** The request's output budget; billed completion never exceeds it. */
  maxTokens: number;
  /** Tool calls streamed back; each adds {@link COMPLETION_TOOL_CALL_TOKENS} to the completion ceiling. Default 0. */
  toolCalls?: number;
}

/** Why {@link defendUsage} decided what it did, for logs and the ops view. */
export interface UsageDefenseDetail {
  /** The claim after sanitizing (negative → 0, fractions floored, non-finite → Infinity). */
  claimed: Usage;
  /** Largest prompt claim accepted as is. */
  promptCeiling: number;
  /** ceil(ownCompletion × family.scale): what a replaced completion is billed. */
  ownCompletionScaled: number;
  /** Largest completion claim accepted as is (before the max-tokens clamp). */
  completionCeiling: number;
  promptOverClaimed: boolean;
  completionOverClaimed: boolean;
  /** True when the completion was lowered to `maxTokens` (not an over-claim by itself). */
  clampedToMaxTokens: boolean;
}

/** The outcome of {@link defendUsage}. */
export interface DefendedUsage {
  /** What to bill and rate-limit on. */
  usage: Usage;
  /** True when the prompt or completion claim was above its ceiling and replaced by our own count. */
  overClaimed: boolean;
  detail: UsageDefenseDetail;
}

/**
 * The usage to bill for one settled request:
 * - prompt: the claim if ≤ floor(ownPrompt × (1 + tolerance)) + {@link PROMPT_CLAIM_SLACK_TOKENS}, else
 *   `ownPrompt`;
 * - completion: the claim if ≤ floor(ceil(ownCompletion × scale) × (1 + tolerance))
 *   + {@link COMPLETION_CLAIM_SLACK_TOKENS} + toolCalls × {@link COMPLETION_TOOL_CALL_TOKENS}, else
 *   ceil(ownCompletion × scale); then at most `maxTokens`;
 * - reasoning: the claim, at most the billed completion (reasoning is part of the completion).
 */
export function defendUsage(input: DefendUsageInput): DefendedUsage {
  const { family, maxTokens } = input;
  const claimed: Usage = {
    promptTokens: sanitize(input.claimed.promptTokens),
    completionTokens: sanitize(input.claimed.completionTokens),
    reasoningTokens: sanitize(input.claimed.reasoningTokens),
  };
  const promptCeiling = withTolerance(input.ownPrompt, family.tolerance) + PROMPT_CLAIM_SLACK_TOKENS;
  const promptOverClaimed = claimed.promptTokens > promptCeiling;
  const promptTokens = promptOverClaimed ? input.ownPrompt : claimed.promptTokens;

  // The epsilon keeps float noise (7 × 1.1 = 7.700000000000001) from adding a token to an exact product.
  const ownCompletionScaled = Math.ceil(input.ownCompletion * family.scale - 1e-9);
  const completionCeiling =
    withTolerance(ownCompletionScaled, family.tolerance) +
    COMPLETION_CLAIM_SLACK_TOKENS +
    (input.toolCalls ?? 0) * COMPLETION_TOOL_CALL_TOKENS;
  const completionOverClaimed = claimed.completionTokens > completionCeiling;
  const unclamped = completionOverClaimed ? ownCompletionScaled : claimed.completionTokens;
  const completionTokens = Math.max(0, Math.min(unclamped, maxTokens));

  return {
    usage: { promptTokens, completionTokens, reasoningTokens: Math.min(claimed.reasoningTokens, completionTokens) },
    overClaimed: promptOverClaimed || completionOverClaimed,
    detail: {
      claimed,
      promptCeiling,
      ownCompletionScaled,
      completionCeiling,
      promptOverClaimed,
      completionOverClaimed,
      clampedToMaxTokens: completionTokens < unclamped,
    },
  };
}

/** floor(n × (1 + tolerance)), with an epsilon so 100 × 1.1 is 110, not 109 or 110.00000000000001. */
function withTolerance(n: number, tolerance: number): number {
  return Math.floor(n * (1 + tolerance) + 1e-9);
}

/**
 * A claimed count as a non-negative integer. Non-finite values (NaN, Infinity) become Infinity so they fail
 * every ceiling and are replaced; negatives become 0, so a claim can never credit the consumer.
 */
function sanitize(n: number): number {
  if (!Number.isFinite(n)) return Number.POSITIVE_INFINITY;
  return n <= 0 ? 0 : Math.floor(n);
}
