/**
 * How far the coordinator's o200k_base count can be trusted for a model, by tokenizer family.
 *
 * gpt-oss uses o200k_base itself, so our count is exact and the tolerance only absorbs chat-template
 * differences. Other families are estimated as o200k × `scale`, with a wider tolerance for the estimate's
 * spread across content types.
 *
 * Gemma's scale was measured against the gemma3 tokenizer as gemma tokens / o200k tokens per corpus:
 * markdown 1.11, code 1.15, prose 1.12, CJK 0.78. It is applied to every "gemma*" model, the catalog's
 * gemma-4-26b included; recalibrate if a Gemma release changes vocabulary. We use 1.12: code
 * is 2.6% above it, well inside the 25% tolerance, and CJK is over-estimated (Gemma packs CJK tighter than
 * o200k), which only makes us more lenient with a provider, never unfair to one.
 *
 * The family is chosen by model-id prefix rather than a catalog field because providers may advertise models
 * outside the catalog (see src/models/catalog.ts), and those must be defended too.
 */

/** The tokenizer families we distinguish. */
export type TokenizerFamilyId = "gpt-oss" | "gemma" | "qwen" | "unknown";

/** How to turn an o200k_base count into a bound on a model's own token count. */
export interface TokenizerFamily {
  readonly id: TokenizerFamilyId;
  /** Model tokens per o200k_base token (1 when the model uses o200k_base). */
  readonly scale: number;
  /**
   * Fraction a provider's claim may exceed our scaled count before it counts as an over-claim, e.g. 0.1 accepts
   * claims up to 110% (plus the fixed slack in defend-usage.ts).
   */
  readonly tolerance: number;
  /** True when the count uses the model's own vocabulary, false when it is a calibrated estimate. */
  readonly exact: boolean;
}

/** Every family, by id. */
export const tokenizerFamilies: Readonly<Record<TokenizerFamilyId, TokenizerFamily>> = Object.freeze({
  "gpt-oss": Object.freeze({ id: "gpt-oss", scale: 1.0, tolerance: 0.1, exact: true }),
  gemma: Object.freeze({ id: "gemma", scale: 1.12, tolerance: 0.25, exact: false }),
  // Qwen2.5/Qwen3 share a ~151k byte-level BPE vocabulary a little less dense than o200k on English and code.
  qwen: Object.freeze({ id: "qwen", scale: 1.1, tolerance: 0.25, exact: false }),
  // An unknown vocabulary: the widest margin, so an honest provider of a model we have not calibrated is not
  // flagged for over-claiming.
  unknown: Object.freeze({ id: "unknown", scale: 1.15, tolerance: 0.3, exact: false }),
});

/** Prefixes of a model name (after any "org/" part, lower-cased), checked in order. */
const PREFIXES: readonly (readonly [string, TokenizerFamilyId])[] = [
  ["gpt-oss", "gpt-oss"],
  ["gemma", "gemma"],
  ["qwen", "qwen"],
  ["qwq", "qwen"],
];

/**
 * The tokenizer family of a model id, by prefix: "gpt-oss-20b" and "openai/gpt-oss-120b" are gpt-oss,
 * "gemma-4-26b" and "mlx-community/gemma-3-27b-it-4bit" are gemma, "qwen3-8b" and "Qwen/QwQ-32B" are qwen;
 * anything else is unknown.
 */
export function tokenizerFamilyFor(modelId: string): TokenizerFamily {
  const name = modelId.slice(modelId.lastIndexOf("/") + 1).toLowerCase();
  for (const [prefix, id] of PREFIXES) if (name.startsWith(prefix)) return tokenizerFamilies[id];
  return tokenizerFamilies.unknown;
}
