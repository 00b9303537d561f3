/**
 * Tokens and money of one settlement as metrics: `tokens.input`/`tokens.output` and
 * `billing.spend_micro_usd` per model, `billing.provider_earnings_micro_usd` per provider and model,
 * `billing.platform_fee_micro_usd`. Counted once per request, when the settlement is decided (what the ledger
 * will write), so the series agree with the ledger's rows.
 */
import { count } from "../telemetry/metrics.js";
import type { Settlement } from "./types.js";

/** Records one settled request's usage and money. µUSD amounts are bigints; they fit a double far past any real bill. */
export function countSettlement(
  model: string,
  providerId: string,
  usage: { promptTokens: number; completionTokens: number },
  s: Settlement,
): void {
  count("tokens.input", { model }, usage.promptTokens);
  count("tokens.output", { model }, usage.completionTokens);
  count("billing.spend_micro_usd", { model }, Number(s.consumerDebitMicroUsd));
  count("billing.provider_earnings_micro_usd", { model, provider_id: providerId }, Number(s.providerCreditMicroUsd));
  count("billing.platform_fee_micro_usd", { model }, Number(s.platformFeeMicroUsd));
}
