import assert from "node:assert/strict";
import { costMicroUsd, splitDebit } from "../../../src/ledger/pricing.js";

const price = { inputMicroUsdPerMtok: 50_000n, outputMicroUsdPerMtok: 200_000n };

describe("pricing", () => {
  it("rounds each side up separately in integer micro-USD", () => {
    // 1,234 × 0.05 = 61.7 → 62; 567 × 0.2 = 113.4 → 114
    assert.equal(costMicroUsd(price, 1234, 567, "service"), 176n);
  });
  it("applies the consumer minimum only to nonzero usage and at least 1 µUSD for service", () => {
    assert.equal(costMicroUsd(price, 10, 10, "consumer"), 100n);
    assert.equal(costMicroUsd(price, 0, 0, "consumer"), 0n);
    assert.equal(costMicroUsd({ inputMicroUsdPerMtok: 0n, outputMicroUsdPerMtok: 0n }, 5, 5, "service"), 1n);
  });
  it("splits a debit so provider credit plus fee equals the debit", () => {
    assert.deepEqual(splitDebit(999n, 1500), { providerCreditMicroUsd: 850n, platformFeeMicroUsd: 149n });
    assert.deepEqual(splitDebit(10n, 0), { providerCreditMicroUsd: 10n, platformFeeMicroUsd: 0n });
  });
});
