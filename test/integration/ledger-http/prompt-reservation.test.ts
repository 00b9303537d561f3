/**
 * The reservation bounds the prompt's real cost. Settlement never charges past what was reserved, and the
 * reservation's prompt share was the routing estimate doubled (~chars ÷ 2): a dense CJK prompt of 38,028 tokens
 * reserved for 10,024 and the account paid 26 % of its bill (found by review, reproduced). It now reserves on
 * UTF-8 bytes, which no tokenizer's count exceeds.
 */
import assert from "node:assert/strict";
import { verifyLedger } from "../../../src/ledger/verify-ledger.js";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";
import { postJson } from "../../support/http.js";

/** µUSD per million tokens: 1,000 µUSD a token, so every token shows in the debit. */
const PRICE = 1_000_000_000n;

describe("the credit reservation bounds the prompt's cost", function () {
  this.timeout(60_000);
  let t: TestCoordinator;
  before(async () => {
    t = await startTestCoordinator({ tier: "service", creditMicroUsd: 10n ** 12n, macs: [{}] });
    await t.coordinator.ledger.accounts.setModelPrice("gpt-oss-20b", PRICE, PRICE);
  });
  after(async () => t?.close());

  let seed = 11;
  const rand = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const prompts: Record<string, () => string> = {
    "dense CJK": () =>
      Array.from({ length: 20_000 }, () => String.fromCodePoint(0x4e00 + Math.floor(rand() * 20_000))).join(""),
    "rare astral characters": () =>
      Array.from({ length: 5_000 }, () => String.fromCodePoint(0x20000 + Math.floor(rand() * 40_000))).join(""),
  };
  for (const [name, make] of Object.entries(prompts))
    it(`charges a ${name} prompt its full count: the debit is price × billed usage, below the reservation`, async () => {
      const text = make();
      const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
        model: "gpt-oss-20b",
        max_tokens: 1,
        messages: [{ role: "user", content: text, name: "reader" }],
      });
      assert.equal(r.status, 200, r.text);
      const usage = (JSON.parse(r.text) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
      assert.ok(
        usage.prompt_tokens > text.length,
        `prompt ${usage.prompt_tokens} tokens for ${text.length} characters`,
      );
      await t.coordinator.ledger.flush();
      const row = await t.db.db
        .selectFrom("ledger_requests")
        .select(["reserved_micro_usd", "consumer_debit_micro_usd", "prompt_tokens", "completion_tokens"])
        .where("request_id", "=", r.headers.get("x-request-id")!)
        .executeTakeFirstOrThrow();
      const cost = (BigInt(row.prompt_tokens) + BigInt(row.completion_tokens)) * (PRICE / 1_000_000n);
      assert.equal(Number(row.prompt_tokens), usage.prompt_tokens);
      assert.equal(BigInt(row.consumer_debit_micro_usd), cost);
      assert.ok(
        BigInt(row.reserved_micro_usd) > cost,
        `reserved ${row.reserved_micro_usd} µUSD for a ${cost} µUSD bill`,
      );
    });

  it("leaves the ledger's invariants intact", async () => {
    assert.deepEqual(await verifyLedger(t.db.db), { ok: true, violations: [], quarantined: [] });
  });
});
