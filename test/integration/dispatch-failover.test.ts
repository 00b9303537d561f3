/**
 * Dispatch guarantees with real simulated Macs over gRPC, a real coordinator and real Postgres: invisible
 * pre-content failover, explicit in-band errors after content, speculative backups, cancellation.
 *
 * To make routing deterministic, the Mac under test holds the model warm and its healthy peer holds it on
 * disk only: the scheduler always prefers the warm one first.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { chatText, doneCount, eventually, postJson } from "../support/http.js";

const cold = { warmModels: [] as string[] };

async function ledgerRow(t: TestCoordinator, requestId: string) {
  await t.coordinator.ledger.flush();
  return t.db.db
    .selectFrom("ledger_requests")
    .selectAll()
    .where("request_id", "=", requestId)
    .executeTakeFirstOrThrow();
}

describe("dispatch: failures before content are retried invisibly", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  afterEach(async () => t?.close());

  const chat = (extra: Record<string, unknown> = {}) => ({
    model: "gpt-oss-20b",
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: 24,
    messages: [{ role: "user", content: "Say hello" }],
    ...extra,
  });

  it("retries an error before content on another provider: one clean 200 stream, one [DONE], the failed provider not billed", async () => {
    t = await startTestCoordinator({
      macs: [{ failures: { script: [{ kind: "error_before_content", afterRole: true }] } }, cold],
    });
    const [bad, good] = t.macs;
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat());
    assert.equal(r.status, 200);
    assert.equal(doneCount(r.text), 1);
    assert.ok(!r.text.includes('"error"'), "no error event reached the consumer");
    assert.ok(chatText(r.events).length > 0);
    assert.equal(
      r.events.filter((e) => (e as { choices?: { delta?: { role?: string } }[] })?.choices?.[0]?.delta?.role).length,
      1,
      "exactly one role delta",
    );
    const row = await ledgerRow(t, r.headers.get("x-request-id")!);
    assert.equal(row.state, "settled");
    assert.equal(row.provider_id, good!.providerId, "the provider that served is the one credited");
    assert.notEqual(row.provider_id, bad!.providerId);
  });

  it("retries a disconnect before content the same way", async () => {
    t = await startTestCoordinator({ macs: [{ failures: { script: [{ kind: "disconnect_before_content" }] } }, cold] });
    const good = t.macs[1]!;
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat());
    assert.equal(r.status, 200);
    assert.equal(doneCount(r.text), 1);
    assert.ok(!r.text.includes('"error"'));
    assert.equal((await ledgerRow(t, r.headers.get("x-request-id")!)).provider_id, good.providerId);
  });

  it("fails over a provider that sends a role delta and then stalls, within the preamble budget", async () => {
    t = await startTestCoordinator({
      config: { firstTokenBaseMs: 300, preambleContentTimeoutMs: 400, speculativeFraction: 0 },
      macs: [{ failures: { script: [{ kind: "role_then_stall" }] } }, cold],
    });
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat());
    assert.equal(r.status, 200);
    assert.equal(doneCount(r.text), 1);
    assert.ok(chatText(r.events).length > 0);
    assert.ok(r.elapsedMs >= 400, `waited for the preamble budget (${Math.round(r.elapsedMs)} ms)`);
    assert.ok(r.elapsedMs < 3_000, `failed over promptly (${Math.round(r.elapsedMs)} ms)`);
    assert.deepEqual(
      t.macs[0]!.cancelsReceived,
      [r.headers.get("x-request-id")],
      "the stalled provider was told to stop",
    );
  });

  it("ends the stream with an explicit in-band error after content, and bills the partial output", async () => {
    t = await startTestCoordinator({
      macs: [{ failures: { script: [{ kind: "error_after_content", afterTokens: 4 }] } }, cold],
    });
    const bad = t.macs[0]!;
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat({ max_tokens: 64 }));
    assert.equal(r.status, 200);
    assert.ok(chatText(r.events).length > 0, "content flowed before the failure");
    const err = r.events.find((e) => typeof e === "object" && e !== null && "error" in e) as
      | { error: { message: string; code: string } }
      | undefined;
    assert.ok(err, "an explicit error event ends the stream");
    assert.equal(err.error.code, "provider_error");
    const row = await ledgerRow(t, r.headers.get("x-request-id")!);
    assert.equal(row.state, "settled");
    assert.equal(row.provider_id, bad.providerId);
    assert.ok(row.completion_tokens > 0, "the partial output is billed");
    assert.ok(row.consumer_debit_micro_usd > 0n);

    // The official SDK surfaces it as an error, not a silently truncated answer.
    const client = new OpenAI({ baseURL: t.apiBase, apiKey: t.apiKey, maxRetries: 0 });
    bad.script({ kind: "error_after_content", afterTokens: 4 });
    await assert.rejects(async () => {
      const s = await client.chat.completions.create({
        model: "gpt-oss-20b",
        stream: true,
        max_tokens: 64,
        messages: [{ role: "user", content: "hi" }],
      });
      for await (const _ of s) void _;
    }, OpenAI.APIError);
  });

  it("races a speculative backup when the primary is slow: the backup wins and the loser gets CancelInference", async () => {
    t = await startTestCoordinator({
      config: { firstTokenBaseMs: 600, speculativeFraction: 0.5 },
      macs: [{ failures: { script: [{ kind: "slow_first_token", delayMs: 5_000 }] } }, cold],
    });
    const [slow, fast] = t.macs;
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat());
    assert.equal(r.status, 200);
    assert.ok(r.elapsedMs < 2_500, `the backup answered long before the slow primary (${Math.round(r.elapsedMs)} ms)`);
    const id = r.headers.get("x-request-id")!;
    await eventually(() => slow!.cancelsReceived.includes(id), 2_000, "CancelInference at the loser");
    const row = await ledgerRow(t, id);
    assert.equal(row.provider_id, fast!.providerId, "only the winner is billed");
  });

  it("cancels the provider's work when the consumer disconnects, and bills what was produced", async () => {
    t = await startTestCoordinator({
      macs: [{ instant: false, timeScale: 1, diskGbs: 1_000, naturalTokens: { min: 2_000, max: 2_000 } }],
    });
    const mac = t.macs[0]!;
    const ac = new AbortController();
    const res = await fetch(`${t.apiBase}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify(chat({ max_tokens: 2_000 })),
      signal: ac.signal,
    });
    const id = res.headers.get("x-request-id")!;
    const reader = res.body!.getReader();
    await reader.read(); // some content has flowed
    ac.abort();
    await eventually(() => mac.cancelsReceived.includes(id), 2_000, "CancelInference after the consumer left");
    await eventually(async () => (await ledgerRow(t, id)).state !== "reserved", 3_000, "settlement");
    const row = await ledgerRow(t, id);
    assert.equal(row.state, "settled");
    assert.ok(row.completion_tokens > 0 && row.completion_tokens < 2_000);
  });

  it("gives the consumer a clean error, never a hang, when its provider dies mid-stream", async () => {
    t = await startTestCoordinator({
      macs: [{ instant: false, timeScale: 1, diskGbs: 1_000, naturalTokens: { min: 2_000, max: 2_000 } }],
    });
    const mac = t.macs[0]!;
    const res = await fetch(`${t.apiBase}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify(chat({ max_tokens: 2_000 })),
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let text = new TextDecoder().decode((await reader.read()).value);
    mac.kill();
    const started = Date.now();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    assert.ok(Date.now() - started < 5_000, "the stream ended promptly");
    assert.match(text, /"error":\{[^}]*disconnect/, "an explicit in-band error event");
    assert.equal(doneCount(text), 1);
  });
});
