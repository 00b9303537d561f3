/**
 * Hostile providers over real gRPC and PostgreSQL: values no honest Mac sends are refused at the protocol edge,
 * and a write PostgreSQL refuses is quarantined while every other account keeps being billed.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { sql } from "kysely";
import { FinishReason, LoadState } from "../../gen/coordinator/provider/v1/provider_pb.js";
import { chipProfiles } from "../../src/tools/fleet/chip-profiles.js";
import { verifyLedger } from "../../src/ledger/verify-ledger.js";
import { outputTokenCeiling } from "../../src/dispatch/request-run.js";
import { countTextTokens } from "../../src/usage/token-counter.js";
import { RecordingLogger } from "../support/dispatch-harness.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { eventually, postJson } from "../support/http.js";
import { RawProvider } from "../support/raw-provider.js";

const model = { id: "gpt-oss-20b", sizeBytes: 12_000_000_000n, contextLength: 32_768 };
const chat = (content = "hello") => ({ model: "gpt-oss-20b", max_tokens: 64, messages: [{ role: "user", content }] });

describe("hostile providers", function () {
  this.timeout(60_000);
  let t: TestCoordinator;
  const cleanup: (() => void | Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) await c();
    await t?.close();
  });
  const raw = () => {
    const p = new RawProvider({ grpcPort: t.coordinator.grpcPort });
    cleanup.push(() => p.close());
    return p;
  };

  it("refuses a NUL serial and a NUL or HTML model name at Register, naming the field, and lists none of them", async () => {
    t = await startTestCoordinator({ macs: [] });
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ serial: "EVIL\u00001", models: [model] }, /^serial: /],
      [{ serial: "EVIL-2", models: [{ ...model, id: "gpt-oss\u0000-20b" }] }, /^models\[0\]\.id: /],
      [{ serial: "EVIL-3", models: [{ ...model, id: "<img src=x onerror=alert(1)>" }] }, /^models\[0\]\.id: /],
      [{ serial: "EVIL-4", models: [{ ...model, id: "m".repeat(100_000) }] }, /^models\[0\]\.id: /],
    ];
    for (const [r, details] of cases) {
      const p = raw();
      p.register({ authToken: t.providerToken, serial: "x", ...r });
      const status = await p.status;
      assert.equal(status.code, grpc.status.INVALID_ARGUMENT, String(r.serial));
      assert.match(status.details, details);
    }
    assert.equal(t.coordinator.registry.size, 0);
    const models = await fetch(`${t.apiBase}/models`, { headers: { authorization: `Bearer ${t.apiKey}` } });
    const ids = ((await models.json()) as { data: { id: string }[] }).data.map((m) => m.id);
    assert.ok(
      ids.every((id) => /^[A-Za-z0-9][A-Za-z0-9._:@+/-]*$/.test(id) && id.length <= 128),
      ids.join(","),
    );
  });

  it("ends a session that sends bytes that are not a ProviderMessage (INVALID_ARGUMENT), and keeps serving", async () => {
    t = await startTestCoordinator({ macs: [{}] });
    const p = raw();
    await p.registerAndWait({ authToken: t.providerToken, serial: "GARBAGE-1", models: [model] });
    p.sendRaw(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]));
    const status = await p.status;
    assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
    assert.match(status.details, /not a valid ProviderMessage/);
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat());
    assert.equal(r.status, 200, r.text);
  });

  it("refuses a NUL model name in a heartbeat by ending that session (INVALID_ARGUMENT)", async () => {
    t = await startTestCoordinator({ macs: [] });
    const p = raw();
    await p.registerAndWait({ authToken: t.providerToken, serial: "HB-1", models: [model] });
    p.heartbeat("gpt-oss\u000020b");
    const status = await p.status;
    assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
    assert.match(status.details, /slots\[0\]\.model/);
    assert.equal(t.coordinator.registry.size, 0);
  });

  it("bills a 3e9-token usage claim at the coordinator's count, ends the liar's session, and keeps billing everyone", async () => {
    t = await startTestCoordinator({ macs: [] });
    const liar = raw();
    await liar.registerAndWait({ authToken: t.providerToken, serial: "LIAR-1", models: [model] });
    liar.heartbeat("gpt-oss-20b");
    liar.serve({ usage: () => ({ promptTokens: 3_000_000_000, completionTokens: 7 }) });
    await t.waitForProviders(1);

    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat());
    assert.equal(r.status, 200, r.text);
    const usage = (JSON.parse(r.text) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
    assert.ok(
      usage.prompt_tokens > 0 && usage.prompt_tokens < 200,
      `prompt billed at the coordinator's count, got ${usage.prompt_tokens}`,
    );
    const status = await liar.status;
    assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
    assert.match(status.details, /usage\.prompt_tokens/);

    await t.coordinator.ledger.flush();
    const verdict = await verifyLedger(t.db.db);
    assert.deepEqual(verdict, { ok: true, violations: [], quarantined: [] });
    const row = await t.db.db
      .selectFrom("ledger_requests")
      .select(["state", "prompt_tokens"])
      .where("account_id", "=", t.accountId)
      .executeTakeFirstOrThrow();
    assert.equal(row.state, "settled");
    assert.equal(Number(row.prompt_tokens), usage.prompt_tokens);
    assert.equal(t.coordinator.ledger.status().queuedWrites, 0);
  });

  it("bills inflated prompt and completion claims at the coordinator's count, with no rate-limit lock-out, and fences a repeat liar", async () => {
    t = await startTestCoordinator({ macs: [] });
    const liar = raw();
    const liarId = await liar.registerAndWait({ authToken: t.providerToken, serial: "INFLATE-1", models: [model] });
    liar.heartbeat("gpt-oss-20b");
    const text = "Twelve honest words streamed back to the consumer by a lying provider today.";
    // Within the wire bound (16,777,216), so not refused outright: only the comparison with our count catches it.
    liar.serve({ text, usage: () => ({ promptTokens: 10_000_000, completionTokens: 10_000_000 }) });
    await t.waitForProviders(1);

    const billed: { prompt_tokens: number; completion_tokens: number }[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat(`request ${i}`));
      assert.equal(r.status, 200, `request ${i} is served, not locked out: ${r.text}`);
      billed.push((JSON.parse(r.text) as { usage: (typeof billed)[number] }).usage);
      // The limiter was reconciled with the billed usage, not 10^9 tokens.
      assert.ok(
        Number(r.headers.get("x-ratelimit-remaining-input-tokens")) > 1_000,
        r.headers.get("x-ratelimit-remaining-input-tokens") ?? "no header",
      );
    }
    for (const u of billed) {
      assert.ok(u.prompt_tokens > 0 && u.prompt_tokens < 200, `prompt ${u.prompt_tokens}`);
      assert.ok(
        u.completion_tokens >= 10 && u.completion_tokens <= 20,
        `completion ${u.completion_tokens} for ${text.split(" ").length} words streamed`,
      );
    }
    await t.coordinator.ledger.flush();
    const rows = await t.db.db
      .selectFrom("ledger_requests")
      .select(["prompt_tokens", "completion_tokens", "consumer_debit_micro_usd"])
      .where("account_id", "=", t.accountId)
      .execute();
    assert.equal(rows.length, 4);
    for (const r of rows)
      assert.ok(
        Number(r.prompt_tokens) < 200 &&
          Number(r.completion_tokens) <= 20 &&
          BigInt(r.consumer_debit_micro_usd) === 100n /* the consumer-tier minimum, as for an honest answer */,
        JSON.stringify(r, (_k, v) => (typeof v === "bigint" ? v.toString() : v)),
      );
    assert.ok((t.coordinator.registry.get(liarId)?.costPenaltyFactor ?? 1) > 1, "the liar's routing weight is lowered");
    // Operators see the divergence per provider.
    const listed = await fetch(`${t.baseUrl}/coordinator.admin.v1.AdminService/ListProviders`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" },
      body: "{}",
    });
    const liarRow = (
      (await listed.json()) as { providers: { id: string; usageOverClaims?: number; routingPenalty?: number }[] }
    ).providers.find((p) => p.id === liarId);
    assert.equal(liarRow?.usageOverClaims, 4);
    assert.equal(liarRow?.routingPenalty, 1.8);

    // The fifth over-claim in its window fences it: the session ends and the serial may not register again.
    const fifth = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat("request 4"));
    assert.equal(fifth.status, 200);
    const status = await liar.status;
    assert.equal(status.code, grpc.status.PERMISSION_DENIED);
    assert.match(status.details, /fenced: usage claims/);
    const again = raw();
    again.register({ authToken: t.providerToken, serial: "INFLATE-1", models: [model] });
    assert.equal((await again.status).code, grpc.status.PERMISSION_DENIED);
  });

  it("does not let absurd capability claims win traffic from an honest Mac", async () => {
    // A modest honest Mac: the liar's claims, even clamped to its tier's physical bounds, beat this one's.
    t = await startTestCoordinator({
      macs: [{ serial: "HONEST-1", chip: chipProfiles.find((c) => c.key === "m4-pro-48")! }],
    });
    const honestId = t.macs[0]!.providerId!;
    const liar = raw();
    const liarId = await liar.registerAndWait({
      authToken: t.providerToken,
      serial: "BRAGGART-1",
      hardware: { chipName: "Apple M3 Ultra", memoryGb: 1e9, memoryBandwidthGbs: 1e12, gpuCores: 100_000 },
      decodeTps: 1e300,
      prefillTps: 1e300,
      models: [model],
    });
    liar.heartbeat("gpt-oss-20b", { budgetMax: 2n ** 64n - 1n, maxConcurrency: 4_096, decodeTps: 1e300 });
    // Really a slow machine: 600 ms to the first token, then about 60 tokens over 1.25 s (~48 tokens/s).
    liar.serve({ text: "slow honest words ".repeat(20), delayMs: 600, chunks: 6, chunkDelayMs: 250 });
    await t.waitForProviders(2);
    const prompt = "Summarise the following notes in one paragraph. ".repeat(40); // about 360 tokens: long enough to measure

    const capacity = (await (await fetch(`${t.apiBase}/models/capacity`)).json()) as
      | { models?: { token_budget_total?: number }[] }
      | { data?: unknown };
    const figures = JSON.stringify(capacity)
      .match(/-?\d+(\.\d+)?(e[+-]?\d+)?/gi)!
      .map(Number);
    assert.ok(
      figures.every((x) => Number.isFinite(x) && Math.abs(x) < 1e9),
      `capacity shows no unbounded figure: ${JSON.stringify(capacity)}`,
    );

    const servedBy = new Map<string, number>();
    for (let i = 0; i < 16; i++) {
      const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
        ...chat(`${prompt} (${i})`),
        max_tokens: 200,
      });
      assert.equal(r.status, 200, r.text);
      const id = r.headers.get("x-provider-id") ?? "";
      servedBy.set(id, (servedBy.get(id) ?? 0) + 1);
    }
    // It may win while unmeasured; once its real rates are measured the honest Mac takes the traffic.
    assert.ok(
      (servedBy.get(liarId) ?? 0) <= 3,
      `the liar served ${servedBy.get(liarId) ?? 0} of 16 (honest: ${servedBy.get(honestId) ?? 0})`,
    );
  });

  it("ends a session whose load status names no model id (4 MiB), and records no outcome for a model the Mac never advertised", async () => {
    t = await startTestCoordinator({ macs: [] });
    const p = raw();
    await p.registerAndWait({ authToken: t.providerToken, serial: "LOADSTAT-1", models: [model] });
    // A well-formed id the Mac did not advertise: ignored, no cooldown key, the session stays.
    p.send({ msg: { case: "modelLoadStatus", value: { model: "qwen3-8b", state: LoadState.FAILED, error: "x" } } });
    p.send({
      msg: { case: "modelLoadStatus", value: { model: "gpt-oss-20b", state: LoadState.FAILED, error: "oom" } },
    });
    await eventually(() => t.coordinator.health.stats().loadEntries === 1, 5_000, "the advertised model's refusal");
    assert.equal(t.coordinator.registry.size, 1);
    p.send({
      msg: { case: "modelLoadStatus", value: { model: "x".repeat(4 * 1024 * 1024), state: LoadState.FAILED } },
    });
    const status = await p.status;
    assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
    assert.match(status.details, /^model_load_status\.model: longer than 128 characters/);
    assert.equal(t.coordinator.registry.size, 0);
  });

  it("gives nameless tool-call deltas no allowance: 256 of them and a 4,000-token claim bill what was streamed", async () => {
    t = await startTestCoordinator({ macs: [] });
    const p = raw();
    await p.registerAndWait({ authToken: t.providerToken, serial: "TOOLS-1", models: [model] });
    p.heartbeat("gpt-oss-20b");
    await t.waitForProviders(1);
    const served = p
      .next((m) => m.msg.case === "inferenceRequest")
      .then((m) => {
        const requestId = (m.msg.value as { requestId: string }).requestId;
        const deltas = [
          { delta: { case: "content" as const, value: "ok" } },
          ...Array.from({ length: 256 }, (_, index) => ({ delta: { case: "toolCall" as const, value: { index } } })),
        ];
        p.send({ msg: { case: "inferenceChunk", value: { requestId, deltas } } });
        p.send({
          msg: {
            case: "inferenceComplete",
            value: { requestId, finishReason: FinishReason.STOP, usage: { promptTokens: 20, completionTokens: 4000 } },
          },
        });
      });
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, { ...chat(), max_tokens: 8000 });
    await served;
    assert.equal(r.status, 200, r.text);
    const usage = (JSON.parse(r.text) as { usage: { completion_tokens: number } }).usage;
    assert.ok(usage.completion_tokens < 100, `billed ${usage.completion_tokens} completion tokens for "ok"`);
  });

  it("stops a provider streaming past outputTokenCeiling (8 × max_tokens + 1,024), not at it: `length`, billed at most max_tokens, no over-claim booked", async () => {
    const log = new RecordingLogger();
    t = await startTestCoordinator({ macs: [], logger: log });
    const p = raw();
    await p.registerAndWait({ authToken: t.providerToken, serial: "OVERRUN-1", models: [model] });
    p.heartbeat("gpt-oss-20b");
    await t.waitForProviders(1);
    const ceiling = outputTokenCeiling(16);
    const text = (tokens: number) => " the".repeat(tokens);
    assert.equal(countTextTokens(text(ceiling + 1)), ceiling + 1, "precondition: one token per ' the'");
    // Streams `tokens` tokens in chunks of ~100, then completes claiming max_tokens (the next request it receives).
    const serveOnce = (tokens: number) =>
      p.serve({
        text: text(tokens),
        chunks: Math.ceil(tokens / 100),
        usage: () => ({ promptTokens: 20, completionTokens: 16 }),
      });
    type Answer = {
      choices: { finish_reason: string; message: { content: string } }[];
      usage: { completion_tokens: number };
    };

    serveOnce(ceiling);
    const atBound = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, { ...chat(), max_tokens: 16 });
    assert.equal(atBound.status, 200, atBound.text);
    const whole = JSON.parse(atBound.text) as Answer;
    assert.equal(whole.choices[0]!.finish_reason, "stop", "at the ceiling: delivered whole");
    assert.equal(whole.choices[0]!.message.content, text(ceiling));

    const cancelled = p.next((m) => m.msg.case === "cancelInference");
    serveOnce(ceiling + 1);
    const past = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, { ...chat(), max_tokens: 16 });
    await cancelled;
    assert.equal(past.status, 200, past.text);
    const cut = JSON.parse(past.text) as Answer;
    assert.equal(cut.choices[0]!.finish_reason, "length");
    assert.ok(cut.usage.completion_tokens <= 16, `billed ${cut.usage.completion_tokens}`);
    assert.equal(log.lines.filter((l) => l.msg === "provider streamed past max_tokens; stopped").length, 1);
    assert.deepEqual(
      log.lines.filter((l) => /over-claim/.test(l.msg)).map((l) => `${l.msg} ${JSON.stringify(l.fields)}`),
      [],
      "an overrun is not a usage over-claim",
    );

    // Streamed: the same cut, as a clean SSE ending.
    const res = await fetch(`${t.apiBase}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ ...chat(), max_tokens: 16, stream: true }),
    });
    const sse = await res.text();
    assert.match(sse, /"finish_reason":"length"/);
    assert.match(sse, /data: \[DONE\]\n\n$/);
  });

  it("bounds output by the max_tokens the Mac was sent, not the context-clamped budget it is billed at", async () => {
    t = await startTestCoordinator({ macs: [] });
    const p = raw();
    await p.registerAndWait({
      authToken: t.providerToken,
      serial: "CLAMPED-1",
      models: [{ ...model, contextLength: 131_072 }],
    });
    p.heartbeat("gpt-oss-20b");
    await t.waitForProviders(1);
    // A ~125k-token prompt estimate leaves ~6k of the 131,072 context: traits.maxTokens is clamped to it, while the
    // Mac is sent the caller's 30,000. An answer past 8 × the clamped budget but within the sent one is whole.
    const prompt = "word ".repeat(100_000);
    const tokens = outputTokenCeiling(131_072 - 125_004) + 100;
    assert.ok(tokens < outputTokenCeiling(30_000));
    p.serve({
      text: " the".repeat(tokens),
      chunks: Math.ceil(tokens / 500),
      usage: () => ({ promptTokens: 20, completionTokens: 16 }),
    });
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
      model: "gpt-oss-20b",
      max_tokens: 30_000,
      messages: [{ role: "user", content: prompt }],
    });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    const body = JSON.parse(r.text) as { choices: { finish_reason: string; message: { content: string } }[] };
    assert.equal(body.choices[0]!.finish_reason, "stop");
    assert.equal(body.choices[0]!.message.content.length, 4 * tokens);
  });

  it("bounds output by the context when the caller sends max_tokens 10^9 (the Mac is asked for at most the context)", async () => {
    t = await startTestCoordinator({ macs: [] });
    const p = raw();
    const tiny = { id: "tiny-context-model", sizeBytes: 1_000_000_000n, contextLength: 4_096 };
    await p.registerAndWait({ authToken: t.providerToken, serial: "HUGE-ASK-1", models: [tiny] });
    p.heartbeat(tiny.id);
    await t.waitForProviders(1);
    const sent: number[] = [];
    const tokens = outputTokenCeiling(4_096) + 1;
    p.serve({
      text: " the".repeat(tokens),
      chunks: Math.ceil(tokens / 1_000),
      usage: (req) => {
        sent.push((JSON.parse(Buffer.from(req.bodyJson).toString()) as { max_tokens: number }).max_tokens);
        return { promptTokens: 20, completionTokens: 16 };
      },
    });
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
      model: tiny.id,
      max_tokens: 1_000_000_000,
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    const body = JSON.parse(r.text) as { choices: { finish_reason: string }[]; usage: { completion_tokens: number } };
    assert.equal(body.choices[0]!.finish_reason, "length");
    assert.ok(body.usage.completion_tokens <= 4_096, `billed ${body.usage.completion_tokens}`);
    await eventually(() => sent.length === 1, 5_000, "the Mac's completion");
    assert.deepEqual(sent, [4_096], "the Mac is asked for the context, not 10^9");
  });

  it("throttles a heartbeat flood, then ends the session with RESOURCE_EXHAUSTED and holds the serial off for a while", async () => {
    t = await startTestCoordinator({ macs: [] });
    const flooder = raw();
    await flooder.registerAndWait({ authToken: t.providerToken, serial: "FLOOD-1", models: [model] });
    for (let i = 0; i < 2_000; i++) flooder.heartbeat("gpt-oss-20b");
    const status = await flooder.status;
    assert.equal(status.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(status.details, /too many frames/);
    assert.equal(t.coordinator.registry.size, 0);

    const again = raw();
    again.register({ authToken: t.providerToken, serial: "FLOOD-1", models: [model] });
    const refused = await again.status;
    assert.equal(refused.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(refused.details, /retry in \d+ s/);
  });

  it("quarantines a settlement PostgreSQL refuses while every other account's requests are billed, and ledger verify stays clean", async () => {
    t = await startTestCoordinator({ macs: [{ maxConcurrency: 16 }, { maxConcurrency: 16 }] });
    const accounts = t.coordinator.ledger.accounts;
    const poisoned = await accounts.createAccount({
      name: "poisoned",
      tier: "consumer",
      initialCreditMicroUsd: 50_000_000n,
    });
    const poisonedKey = (await accounts.issueApiKey({ accountId: poisoned.id })).apiKey;
    // A deterministic failure only this account's settlements hit (as a NUL byte or an overflow would). On insert
    // too: a settlement may write its row in the same statement when the dispatch row was not written yet.
    await sql`CREATE FUNCTION refuse_poisoned() RETURNS trigger AS $$
      BEGIN
        IF NEW.state = 'settled' AND NEW.account_id = ${sql.lit(poisoned.id)} THEN
          RAISE EXCEPTION 'simulated poisoned settlement' USING ERRCODE = '23514';
        END IF;
        RETURN NEW;
      END $$ LANGUAGE plpgsql`.execute(t.db.db);
    await sql`CREATE TRIGGER refuse_poisoned BEFORE INSERT OR UPDATE ON ledger_requests FOR EACH ROW EXECUTE FUNCTION refuse_poisoned()`.execute(
      t.db.db,
    );

    const results = await Promise.all([
      ...Array.from({ length: 6 }, (_, i) =>
        postJson(`${t.apiBase}/chat/completions`, poisonedKey, chat(`poisoned ${i}`)),
      ),
      ...Array.from({ length: 6 }, (_, i) => postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat(`healthy ${i}`))),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      Array(12).fill(200),
    );
    await t.coordinator.ledger.flush();
    // Later writes are not stuck behind the refused ones.
    await eventually(() => t.coordinator.ledger.status().queuedWrites === 0, 10_000, "the writer to drain");
    assert.equal(t.coordinator.ledger.status().degraded, false);

    const healthy = await t.db.db
      .selectFrom("ledger_requests")
      .select(["state", "consumer_debit_micro_usd"])
      .where("account_id", "=", t.accountId)
      .execute();
    assert.equal(healthy.length, 6);
    assert.ok(
      healthy.every((r) => r.state === "settled" && BigInt(r.consumer_debit_micro_usd ?? 0) > 0n),
      JSON.stringify(healthy, (_k, v) => (typeof v === "bigint" ? v.toString() : v)),
    );
    const quarantined = await t.db.db.selectFrom("ledger_quarantine").selectAll().execute();
    assert.equal(quarantined.length, 6, "each refused settlement quarantined with its error");
    const verdict = await verifyLedger(t.db.db);
    assert.equal(verdict.ok, true, verdict.violations.join("\n"));
    assert.equal(verdict.quarantined.length, 6);
  });
});
