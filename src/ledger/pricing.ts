/**
 * Pure pricing: integer micro-USD, never floating point. Prices are micro-USD per million tokens; each side is
 * rounded up separately (`ceil(tokens * price / 1e6)`), then the tier's minimum applies.
 */
import type { AccountTier } from "../accounts/types.js";

export interface ModelPrice {
  inputMicroUsdPerMtok: bigint;
  outputMicroUsdPerMtok: bigint;
}

export interface PricingPolicy {
  /** Minimum charge for a consumer-tier request with nonzero usage, µUSD. Default 100. */
  consumerMinimumMicroUsd: bigint;
  /** Price used for models without a stored or default price (Go coordinator fallback: $0.05 / $0.20 per M). */
  fallback: ModelPrice;
}

export const defaultPricingPolicy: PricingPolicy = Object.freeze({
  consumerMinimumMicroUsd: 100n,
  fallback: Object.freeze({ inputMicroUsdPerMtok: 50_000n, outputMicroUsdPerMtok: 200_000n }),
});

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

/**
 * The cost of a request with the given token counts. Zero usage costs zero (failures settle at zero).
 * Consumer tier: at least `consumerMinimumMicroUsd`; service tier: no minimum but at least 1 µUSD.
 */
export function costMicroUsd(
  price: ModelPrice,
  promptTokens: number,
  completionTokens: number,
  tier: AccountTier,
  policy: PricingPolicy = defaultPricingPolicy,
): bigint {
  const p = BigInt(Math.max(0, Math.floor(promptTokens)));
  const c = BigInt(Math.max(0, Math.floor(completionTokens)));
  if (p === 0n && c === 0n) return 0n;
  const raw =
    ceilDiv(p * price.inputMicroUsdPerMtok, 1_000_000n) + ceilDiv(c * price.outputMicroUsdPerMtok, 1_000_000n);
  const floor = tier === "consumer" ? policy.consumerMinimumMicroUsd : 1n;
  return raw > floor ? raw : floor;
}

/** Splits a consumer debit into provider credit and platform fee (fee rounded down: it never exceeds bps). */
export function splitDebit(
  debitMicroUsd: bigint,
  platformFeeBps: number,
): { providerCreditMicroUsd: bigint; platformFeeMicroUsd: bigint } {
  const bps = BigInt(Math.min(10_000, Math.max(0, Math.floor(platformFeeBps))));
  const fee = (debitMicroUsd * bps) / 10_000n;
  return { providerCreditMicroUsd: debitMicroUsd - fee, platformFeeMicroUsd: fee };
}
