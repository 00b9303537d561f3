/**
 * Graceful shutdown: a SIGTERM (deploy, scale-down) must not cut streams that are in flight. The coordinator
 * drains first: /health turns 503 so load balancers move new work elsewhere, work that still arrives is served,
 * in-flight streams finish and are billed, and only then (or when SHUTDOWN_GRACE_MS runs out) do the servers close.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chipProfiles } from "../../src/tools/fleet/chip-profiles.js";
import { SimulatedMac } from "../../src/tools/fleet/simulated-mac.js";
import {
  freePorts,
  provisionOverAdmin,
  startCoordinatorProcess,
  type CoordinatorProcess,
} from "../support/coordinator-process.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { chatText, doneCount, eventually, postJson, sseData } from "../support/http.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";

/** Decode at 3× real time: a 300-token answer streams for a couple of seconds on the simulated Mac. */
const slowMac = { instant: false, timeScale: 3, naturalTokens: { min: 300, max: 300 } };

const streamBody = (maxTokens: number) => ({
  model: "gpt-oss-20b",
  stream: true,
  stream_options: { include_usage: true },
  max_tokens: maxTokens,
  messages: [{ role: "user", content: "Tell me a long story" }],
});

describe("graceful drain (in process)", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  afterEach(async () => t?.close());

  it("finishes and bills the stream in flight, serves what still arrives, and reports draining until idle", async () => {
    t = await startTestCoordinator({ macs: [slowMac] });
    const inFlight = postJson(`${t.apiBase}/chat/completions`, t.apiKey, streamBody(300));
    await eventually(() => t.coordinator.dispatcher.inflight === 1, 10_000, "the stream to be dispatched");

    const draining = t.coordinator.drain(20_000);
    let drainSettled = false;
    void draining.then(() => (drainSettled = true));

    const health = await fetch(`${t.baseUrl}/health`);
    assert.equal(health.status, 503, "load balancers see the replica leave");
    assert.equal(((await health.json()) as { status: string }).status, "draining");
    const capacity = (await (await fetch(`${t.apiBase}/models/capacity`)).json()) as {
      models: unknown[];
      draining?: boolean;
    };
    assert.deepEqual(capacity, { models: [], draining: true }, "no capacity is advertised while draining");

    // A request that reaches the replica before the load balancer noticed is served, and told not to keep the connection.
    const late = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, {
      model: "gpt-oss-20b",
      max_tokens: 8,
      messages: [{ role: "user", content: "Hi" }],
    });
    assert.equal(late.status, 200);
    assert.equal(late.headers.get("connection"), "close");
    // A stream too: an event stream must not promise the connection that the drain is about to close.
    const lateStream = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, streamBody(8));
    assert.equal(lateStream.status, 200);
    assert.equal(lateStream.headers.get("connection"), "close");
    assert.equal(doneCount(lateStream.text), 1);

    assert.equal(drainSettled, false, "drain waits for the stream in flight");
    const r = await inFlight;
    assert.equal(r.status, 200);
    assert.equal(doneCount(r.text), 1, "the in-flight stream ended cleanly");
    // Begun before the drain, it told the client how long an idle connection is kept (HTTP_KEEP_ALIVE_TIMEOUT_MS),
    // so a client pool drops the connection before the server does instead of sending on a closing socket.
    assert.equal(r.headers.get("keep-alive"), "timeout=65");
    assert.ok(!r.text.includes('"error"'));
    assert.ok(chatText(r.events).length > 0);

    const result = await draining;
    assert.equal(result.drained, true);
    assert.equal(result.unfinished, 0);

    await t.coordinator.ledger.flush();
    const row = await t.db.db
      .selectFrom("ledger_requests")
      .selectAll()
      .where("request_id", "=", r.headers.get("x-request-id")!)
      .executeTakeFirstOrThrow();
    assert.equal(row.state, "settled");
    const usage = (sseData(r.text) as { usage?: { completion_tokens: number } }[]).find((e) => e?.usage)?.usage;
    assert.equal(Number(row.completion_tokens), usage?.completion_tokens, "billed exactly what the consumer was shown");
  });

  it("gives up after the grace period; close() then ends the open stream with an in-band error and bills what was produced", async () => {
    t = await startTestCoordinator({ macs: [slowMac] });
    const res = await fetch(`${t.apiBase}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify(streamBody(300)),
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes('"content"')) {
      const { value, done } = await reader.read();
      assert.ok(!done, "the stream ended before any content");
      text += decoder.decode(value, { stream: true });
    }
    const started = Date.now();
    const result = await t.coordinator.drain(300);
    const waited = Date.now() - started;
    assert.equal(result.drained, false);
    assert.equal(result.unfinished, 1);
    assert.ok(waited >= 250 && waited < 3_000, `waited ${waited} ms for a 300 ms grace period`);

    await t.coordinator.close();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    assert.ok(
      text.includes('"error"'),
      `the cut stream says so in band, never a clean close that looks like success: ${text.slice(-300)}`,
    );
    const row = await t.db.db
      .selectFrom("ledger_requests")
      .selectAll()
      .where("request_id", "=", res.headers.get("x-request-id")!)
      .executeTakeFirstOrThrow();
    assert.equal(row.state, "settled");
    assert.ok(
      Number(row.completion_tokens) > 0 && Number(row.completion_tokens) < 300,
      `billed the ${row.completion_tokens} tokens produced`,
    );
  });

  it("close() answers a request still waiting for capacity with a retryable 503, not a dropped connection", async () => {
    t = await startTestCoordinator({ macs: [{ ...slowMac, maxConcurrency: 1 }] });
    // Loaded first: while a slot is still loading, a second request joins the load instead of queueing here.
    await eventually(
      () => t.coordinator.registry.view().providers[0]?.slots[0]?.state === "idle",
      10_000,
      "the model to load",
    );
    const first = postJson(`${t.apiBase}/chat/completions`, t.apiKey, streamBody(300));
    await eventually(() => t.coordinator.dispatcher.inflight === 1, 10_000, "the first stream to be dispatched");
    const queued = postJson(`${t.apiBase}/chat/completions`, t.apiKey, streamBody(300));
    await eventually(
      () => t.coordinator.dispatcher.queue.depth("gpt-oss-20b") === 1,
      10_000,
      "the second request to queue",
    );
    await t.coordinator.close();
    const r = await queued;
    assert.equal(r.status, 503, r.text);
    assert.equal(r.headers.get("retry-after"), "1");
    assert.match(r.text, /shutting down/);
    await first;
  });

  it("resolves at once when nothing is in flight", async () => {
    t = await startTestCoordinator({ macs: [{}] });
    const result = await t.coordinator.drain(10_000);
    assert.deepEqual({ drained: result.drained, unfinished: result.unfinished }, { drained: true, unfinished: 0 });
    assert.ok(result.waitedMs < 1_000);
  });
});

describe("graceful drain (`coordinator serve` receiving SIGTERM)", function () {
  this.timeout(60_000);
  let testDb: TestDatabase;
  const procs: CoordinatorProcess[] = [];
  const macs: SimulatedMac[] = [];
  before(async () => {
    testDb = await createTestDatabase();
  });
  after(async () => {
    await Promise.all(macs.map((m) => m.stop()));
    for (const p of procs) await p.kill9();
    await testDb?.close();
  });

  /** `coordinator serve` as a child process, a funded key, and one slow Mac holding gpt-oss-20b warm. */
  async function serveWithMac(
    naturalTokens = slowMac.naturalTokens,
  ): Promise<{ proc: CoordinatorProcess; apiKey: string }> {
    const [httpPort, grpcPort] = (await freePorts(2)) as [number, number];
    const adminKey = `admin-${randomBytes(12).toString("hex")}`;
    const proc = await startCoordinatorProcess({
      databaseUrl: testDb.url,
      httpPort,
      grpcPort,
      adminKey,
      env: { SHUTDOWN_GRACE_MS: "20000" },
    });
    procs.push(proc);
    const { apiKey, providerToken: token } = await provisionOverAdmin(proc.baseUrl, adminKey, {
      tier: "ACCOUNT_TIER_CONSUMER",
      creditMicroUsd: 10_000_000n,
    });
    const mac = new SimulatedMac({
      coordinator: `127.0.0.1:${grpcPort}`,
      token,
      serial: `DRAIN-${process.pid}-${macs.length}`,
      chip: chipProfiles.find((c) => c.memoryGb >= 64)!,
      models: ["gpt-oss-20b"],
      warmModels: ["gpt-oss-20b"],
      ...slowMac,
      naturalTokens,
    });
    macs.push(mac);
    const registered = new Promise((r) => mac.once("registered", r));
    mac.start();
    await registered;
    await eventually(
      async () => {
        const cap = (await (await fetch(`${proc.baseUrl}/v1/models/capacity`)).json()) as {
          models: { id: string; warm_providers?: number }[];
        };
        return (cap.models.find((m) => m.id === "gpt-oss-20b")?.warm_providers ?? 0) > 0;
      },
      15_000,
      "the Mac to hold the model warm",
    );
    return { proc, apiKey };
  }

  it("lets a stream in flight finish, then exits 0", async () => {
    const { proc, apiKey } = await serveWithMac();
    const inFlight = postJson(`${proc.baseUrl}/v1/chat/completions`, apiKey, streamBody(300));
    // Wait until the stream has started (the first bytes are back), then deliver SIGTERM.
    await new Promise((r) => setTimeout(r, 800));
    const exited = proc.stop();
    const r = await inFlight;
    assert.equal(r.status, 200, proc.output());
    assert.equal(doneCount(r.text), 1, "the stream ended cleanly after SIGTERM");
    assert.ok(!r.text.includes('"error"'));
    assert.equal(await exited, 0, proc.output());
  });

  it("stops waiting on a second SIGTERM: the open stream ends with an in-band error, and the process exits 0 well before the grace period", async () => {
    // A 3,000-token answer streams for ~15 s: far from done when the signals arrive.
    const { proc, apiKey } = await serveWithMac({ min: 3_000, max: 3_000 });
    const inFlight = postJson(`${proc.baseUrl}/v1/chat/completions`, apiKey, streamBody(3_000));
    await new Promise((r) => setTimeout(r, 800));
    const t0 = Date.now();
    const exited = proc.stop();
    await new Promise((r) => setTimeout(r, 300));
    proc.child.kill("SIGTERM");
    const r = await inFlight;
    assert.equal(r.status, 200, proc.output());
    assert.ok(r.text.includes('"error"'), "the cut stream says so in band");
    assert.equal(await exited, 0, proc.output());
    assert.ok(Date.now() - t0 < 15_000, `exited after ${Date.now() - t0} ms (grace 20 s)`);
    assert.match(proc.output(), /second signal/);
  });
});
