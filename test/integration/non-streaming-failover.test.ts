/**
 * A non-streaming answer gets the streaming guarantee: nothing is written until the answer is complete, so a
 * provider that fails or stalls after producing content is replaced invisibly, and only the Mac that served is
 * billed. Real simulated Macs over gRPC, a real coordinator and real Postgres; as in dispatch-failover.test.ts,
 * the Mac under test holds the model warm and its healthy peer holds it on disk only, so it is picked first.
 */
import assert from "node:assert/strict";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { eventually, postJson } from "../support/http.js";

const cold = { warmModels: [] as string[] };
const body = { model: "gpt-oss-20b", max_tokens: 64, messages: [{ role: "user", content: "Say hello" }] };

interface ChatCompletion {
  choices: { message: { content: string | null } }[];
  usage: { prompt_tokens: number; completion_tokens: number };
}

async function ledgerRow(t: TestCoordinator, requestId: string) {
  await t.coordinator.ledger.flush();
  return t.db.db
    .selectFrom("ledger_requests")
    .selectAll()
    .where("request_id", "=", requestId)
    .executeTakeFirstOrThrow();
}

/** A 200 from `good`, billed to `good` alone, for exactly the usage the consumer was told. */
async function assertServedAndBilledBy(
  t: TestCoordinator,
  r: Awaited<ReturnType<typeof postJson>>,
  goodId: string,
  badId: string,
): Promise<void> {
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get("x-provider-id"), goodId, "the answer names the Mac that served it");
  const answer = JSON.parse(r.text) as ChatCompletion;
  assert.ok((answer.choices[0]?.message.content ?? "").length > 0);
  const row = await ledgerRow(t, r.headers.get("x-request-id")!);
  assert.equal(row.state, "settled");
  assert.equal(row.provider_id, goodId, "the Mac that served is the one credited");
  assert.notEqual(row.provider_id, badId);
  assert.equal(
    Number(row.completion_tokens),
    answer.usage.completion_tokens,
    "billed for the answer delivered, nothing of the failed attempt",
  );
}

describe("dispatch: a non-streaming answer is committed only when it is complete", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  afterEach(async () => t?.close());

  it("retries an error after content on another Mac: a clean 200 from it, and only it is billed", async () => {
    t = await startTestCoordinator({
      macs: [{ failures: { script: [{ kind: "error_after_content", afterTokens: 4 }] } }, cold],
    });
    const [bad, good] = t.macs;
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, body);
    await assertServedAndBilledBy(t, r, good!.providerId!, bad!.providerId!);
  });

  it("retries a stall after content on another Mac, and tells the stalled Mac to stop", async () => {
    t = await startTestCoordinator({
      config: { idleTimeoutMs: 500, speculativeFraction: 0 },
      macs: [{ failures: { script: [{ kind: "stall_after_content", afterTokens: 4 }] } }, cold],
    });
    const [bad, good] = t.macs;
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, body);
    await assertServedAndBilledBy(t, r, good!.providerId!, bad!.providerId!);
    const id = r.headers.get("x-request-id")!;
    await eventually(() => bad!.cancelsReceived.includes(id), 2_000, "CancelInference at the stalled Mac");
  });
});
