/**
 * Bounds on the money an operator can put into the ledger, chosen so that no sum the ledger computes can come
 * near the int8 range (2^63 − 1 ≈ 9.22 × 10^18 µUSD).
 *
 * Why they suffice: money enters the ledger only as `credit` entries, and every later entry moves it (a debit
 * equals the provider's earning plus the platform fee), so no account's balance, earnings, spend or fees can
 * exceed the total ever credited, which {@link MAX_TOTAL_CREDIT_MICRO_USD} keeps 9× below 2^63. Before these
 * bounds, two credits of INT64_MAX made one account unreadable (its balance sum overflowed) and broke the balance
 * roll-up of every account (issue 13).
 *
 * All amounts are integer micro-USD (1 USD = 1,000,000 µUSD).
 */

/** Largest single credit (`CreditAccount`, `CreateAccount.initial_credit_micro_usd`): 10^15 µUSD = $1 billion. */
export const MAX_CREDIT_MICRO_USD = 10n ** 15n;

/** A credit that would take an account's balance above this is refused: 10^17 µUSD = $100 billion. */
export const MAX_BALANCE_MICRO_USD = 10n ** 17n;

/** All credits ever made, summed over every account, stay at or below this: 10^18 µUSD = $1 trillion. */
export const MAX_TOTAL_CREDIT_MICRO_USD = 10n ** 18n;

/** Largest spend cap of a key or an account: the balance ceiling (no cap needs to exceed what an account can hold). */
export const MAX_SPEND_CAP_MICRO_USD = MAX_BALANCE_MICRO_USD;

/**
 * Largest model price per million tokens, each side: 10^10 µUSD = $10,000 per million tokens (today's dearest
 * models are below $100). With token counts bounded by the provider wire bounds (2^24 per request), one
 * request's cost stays below 2 × 10^11 µUSD.
 */
export const MAX_PRICE_MICRO_USD_PER_MTOK = 10n ** 10n;

/** The PostgreSQL int8 range, for checks that a stored sum is still readable as a balance. */
export const INT8_MAX = 2n ** 63n - 1n;
