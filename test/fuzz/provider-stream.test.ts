/**
 * Fuzz of the provider gRPC stream against a real `coordinator serve` (issue 13, item 8): random and mutated
 * protobuf frames as the first frame of a stream, on a registered session, and as the answer to a real
 * consumer request. A malformed frame ends only the session that sent it (INVALID_ARGUMENT, or INTERNAL when
 * grpc-js cannot decode it; a flood RESOURCE_EXHAUSTED), the honest Macs keep serving, consumers get only
 * legitimate statuses, and afterwards the coordinator answers /health, its resident set grew by less than a
 * bound, and `ledger verify` is clean.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { RawProvider, rawProviderClient } from "../support/raw-provider.js";
import { checkSuccess, expect } from "./consumer-answers.js";
import { allOf, batchOf, fuzzParameters, report, runsFor } from "./fuzz-options.js";
import {
  checkRssGrowth,
  loggedErrors,
  startFuzzTarget,
  stopAndVerifyLedger,
  type FuzzResponse,
  type FuzzTarget,
} from "./fuzz-target.js";
import { describeFrame, frameBytes, frameCase, type FrameCase } from "./provider-frames.js";

/** A stream that has not ended this long after its last frame is a hang. */
const STREAM_END_TIMEOUT_MS = 10_000;
const S = grpc.status;
/** Streams open at once per property run: the gRPC round trips are latency-bound, not CPU-bound. */
const BATCH = 16;
/** Streams whose first frame is fuzzed. */
const FIRST_FRAMES = 2_000;
/** Registered sessions sent 1..6 fuzzed frames each (about 3.5 frames per session). */
const LIVE_SESSIONS = 400;
/** Consumer requests answered by a hostile provider's 1..6 fuzzed frames. */
const SERVED_REQUESTS = 400;

/** How a stream may end after a frame that ends it: only that session, for a reason that names the caller. */
const SESSION_ENDS = new Set([S.INVALID_ARGUMENT, S.INTERNAL, S.RESOURCE_EXHAUSTED]);
/** Before registration a frame may also be a Register that fails authentication or the key challenge. */
const HANDSHAKE_ENDS = new Set([...SESSION_ENDS, S.UNAUTHENTICATED, S.PERMISSION_DENIED]);

/** The frame that ends a live session on purpose: a challenge response nobody asked for (INVALID_ARGUMENT). */
const MARKER = {
  msg: { case: "challengeResponse" as const, value: { nonce: new Uint8Array(32), signature: new Uint8Array(64) } },
};
const HARDWARE = { chipName: "Apple M2 Max", chipFamily: "M2", memoryGb: 64, memoryBandwidthGbs: 400, gpuCores: 38 };

/** Resolves with the stream's final status, or throws after `ms` (a hang). */
function endOf(p: RawProvider, ms = STREAM_END_TIMEOUT_MS): Promise<grpc.StatusObject> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.status.finally(() => clearTimeout(timer)),
    new Promise<never>(
      (_, reject) =>
        (timer = setTimeout(() => reject(new Error(`the stream did not end within ${ms} ms (a hang)`)), ms)),
    ),
  ]);
}

/** Checks a final status: one of `allowed`, and INTERNAL only for a frame grpc-js could not decode. */
function checkEnd(status: grpc.StatusObject, allowed: Set<grpc.status>, what: string): void {
  if (!allowed.has(status.code))
    throw new Error(
      `${what}: the session ended with ${S[status.code]} "${status.details}"; allowed: ${[...allowed].map((c) => S[c]).join(", ")}`,
    );
  if (status.code === S.INTERNAL && !/deserializ/i.test(status.details))
    throw new Error(`${what}: INTERNAL that is not a decode failure: "${status.details}"`);
}

describe("fuzz: provider stream", function () {
  this.timeout(180_000);
  let t: FuzzTarget;
  let rssAfterWarmUp = 0;
  let serial = 0;
  let models = 0;
  const nextSerial = () => `FZ-${process.pid}-${++serial}`;
  const providers = new Set<RawProvider>();
  // One channel for every stream: a connection per provider would cost more than the fuzz case itself.
  let client: grpc.Client;
  const raw = () => {
    const p = new RawProvider({ grpcPort: t.grpcPort, client });
    providers.add(p);
    return p;
  };
  const done = (p: RawProvider) => {
    p.close();
    providers.delete(p);
  };
  /** A chat request the honest Macs serve: it must keep succeeding whatever the hostile sessions do. */
  const honestRequest = async () => {
    const res = await t.send({
      method: "POST",
      path: "/v1/chat/completions",
      headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
      body: Buffer.from(
        JSON.stringify({ model: "gpt-oss-20b", max_tokens: 8, messages: [{ role: "user", content: "still there?" }] }),
      ),
    });
    expect(res.status === 200, "the honest Macs keep serving", res);
  };
  /** A registered session advertising `model` (warm, idle), with the simulator's key for a fresh serial. */
  const registered = async (model: string) => {
    const p = raw();
    await p.registerAndWait({
      authToken: t.providerToken,
      serial: nextSerial(),
      hardware: HARDWARE,
      models: [{ id: model, sizeBytes: 4_000_000_000n, contextLength: 32_768 }],
    });
    p.heartbeat(model);
    return p;
  };

  before(async function () {
    if (process.platform !== "linux") this.skip();
    t = await startFuzzTarget();
    client = rawProviderClient(t.grpcPort);
    for (let i = 0; i < 10; i++) {
      await honestRequest();
      const p = await registered(`fz-warm-${i}`);
      p.send(MARKER);
      await endOf(p);
      done(p);
    }
    rssAfterWarmUp = t.rssBytes();
  });
  after(async () => {
    for (const p of providers) p.close();
    client?.close();
    await t?.close();
  });

  it("ends a stream whose first frame is random or a mutated Register with a handshake refusal, never a hang or a crash", async () => {
    const started = performance.now();
    const ends = new Map<string, number>();
    const first = frameCase({ served: false, authToken: "" });
    await fc.assert(
      fc.asyncProperty(batchOf(fc.record({ frame: first, validToken: fc.boolean() }), BATCH), (batch) =>
        allOf(batch, async (c) => {
          // Half the Registers carry the real provider token, so they reach the key challenge (answered wrongly).
          const frame: FrameCase =
            c.validToken && c.frame.message.case === "register"
              ? {
                  ...c.frame,
                  message: { ...c.frame.message, value: { ...c.frame.message.value, authToken: t.providerToken } },
                }
              : c.frame;
          const p = raw();
          try {
            p.sendRaw(frameBytes(frame, "req_none"));
            const status = await endOf(p);
            checkEnd(status, HANDSHAKE_ENDS, `first frame ${describeFrame(frame)}`);
            ends.set(S[status.code]!, (ends.get(S[status.code]!) ?? 0) + 1);
          } finally {
            done(p);
          }
        }),
      ),
      fuzzParameters(runsFor(FIRST_FRAMES, BATCH)),
    );
    await honestRequest();
    await t.assertAlive();
    report(
      "first frames",
      [...ends.values()].reduce((a, b) => a + b, 0),
      started,
      [...ends].map(([k, n]) => `${k}×${n}`).join(" "),
    );
  });

  it("ends a registered session on a malformed frame (INVALID_ARGUMENT / INTERNAL) and only that session, while the honest Macs keep serving", async () => {
    const started = performance.now();
    const ends = new Map<string, number>();
    let frames = 0;
    const script = fc.array(frameCase({ served: false, authToken: "" }), { minLength: 1, maxLength: 6 });
    await fc.assert(
      fc.asyncProperty(batchOf(script, BATCH), (batch) =>
        allOf(batch, async (frameScript) => {
          const p = await registered("fz-idle");
          try {
            const honest = honestRequest();
            honest.catch(() => undefined); // awaited below; not an unhandled rejection if this case fails first
            for (const f of frameScript) p.sendRaw(frameBytes(f, "req_none"));
            frames += frameScript.length;
            // Still open after the script? The marker ends it, proving every frame before it was handled.
            p.send(MARKER);
            const status = await endOf(p);
            checkEnd(status, SESSION_ENDS, `frames ${frameScript.map(describeFrame).join(", ")}`);
            ends.set(S[status.code]!, (ends.get(S[status.code]!) ?? 0) + 1);
            await honest;
          } finally {
            done(p);
          }
        }),
      ),
      fuzzParameters(runsFor(LIVE_SESSIONS, BATCH)),
    );
    await t.assertAlive();
    report(
      "live-session frames",
      frames,
      started,
      `${[...ends].map(([k, n]) => `${k}×${n}`).join(" ")} over ${[...ends.values()].reduce((a, b) => a + b, 0)} sessions`,
    );
  });

  it("answers a consumer whose request reached a hostile provider with 200, 400, 429, 502 or 503 only, and ends only that provider's session", async () => {
    const started = performance.now();
    const statuses = new Map<string, number>();
    let frames = 0;
    const run = fc.record({
      script: fc.array(frameCase({ served: true, authToken: "" }), { minLength: 1, maxLength: 6 }),
      stream: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(batchOf(run, BATCH), (batch) =>
        allOf(batch, async (c) => {
          // A model only this provider serves, so the request reaches it and no honest Mac.
          const model = `fz-m-${++models}`;
          const p = await registered(model);
          try {
            const consumer = t.send({
              method: "POST",
              path: "/v1/chat/completions",
              headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
              body: Buffer.from(
                JSON.stringify({
                  model,
                  max_tokens: 16,
                  stream: c.stream,
                  messages: [{ role: "user", content: "hello" }],
                }),
              ),
            });
            const first = await Promise.race([p.next((m) => m.msg.case === "inferenceRequest"), consumer]);
            if ("msg" in first && first.msg.case === "inferenceRequest") {
              for (const f of c.script) p.sendRaw(frameBytes(f, first.msg.value.requestId));
              frames += c.script.length;
            }
            p.send(MARKER);
            const status = await endOf(p);
            checkEnd(status, SESSION_ENDS, `answer ${c.script.map(describeFrame).join(", ")}`);
            const res = await consumer;
            const what = `the consumer of a hostile provider (${c.script.map(describeFrame).join(", ")})`;
            checkHostileAnswer(res, what);
            statuses.set(String(res.status), (statuses.get(String(res.status)) ?? 0) + 1);
          } finally {
            done(p);
          }
        }),
      ),
      fuzzParameters(runsFor(SERVED_REQUESTS, BATCH)),
    );
    await honestRequest();
    await t.assertAlive();
    report(
      "answers to real requests",
      frames,
      started,
      `consumer ${[...statuses].map(([k, n]) => `${k}×${n}`).join(" ")} over ${[...statuses.values()].reduce((a, b) => a + b, 0)} requests`,
    );
  });

  it("is still alive afterwards, with the honest Macs registered, its resident set bounded and the ledger verified clean", async function () {
    if (!t) this.skip();
    await honestRequest();
    const health = JSON.parse((await t.send({ method: "GET", path: "/health" })).body) as {
      providers_connected: number;
    };
    assert.equal(health.providers_connected, t.macs.length, "only the honest Macs are left, all of them");
    checkRssGrowth(t, rssAfterWarmUp);
    assert.deepEqual(loggedErrors(t), [], "the coordinator logged no internal error");
    // A graceful stop settles what is in flight; then the books must balance.
    await stopAndVerifyLedger(t);
  });
});

/**
 * A consumer whose request a hostile provider answered: served (a stream may end with an in-band error once
 * content has flowed), 400 (the provider called the request invalid: deterministic, not retried), 429 (no
 * capacity left), 502 (the provider failed it) or 503 (no provider left for the model). Never a 500.
 */
function checkHostileAnswer(res: FuzzResponse, what: string): void {
  expect([200, 400, 429, 502, 503].includes(res.status), `${what}: 200, 400, 429, 502 or 503`, res);
  // 400 only as the provider's own verdict on the request (an InferenceError of reason context overflow or invalid
  // request is deterministic: not retried elsewhere).
  if (res.status === 400)
    expect(
      /"code":"context_length_exceeded"/.test(res.body),
      `${what}: a 400 is a provider's deterministic refusal`,
      res,
    );
  if (res.status !== 200) {
    const e = JSON.parse(res.body) as { error?: { type?: unknown; message?: unknown } };
    expect(
      typeof e.error?.message === "string" && typeof e.error.type === "string",
      `${what}: an OpenAI error body`,
      res,
    );
    return;
  }
  if (!String(res.headers["content-type"]).startsWith("text/event-stream")) {
    checkSuccess(res);
    return;
  }
  // In-band errors are this stream's honest outcome; the body must still be well-formed SSE.
  for (const line of res.body.split("\n")) {
    if (!line.startsWith("data:") || line.trim() === "data: [DONE]") continue;
    JSON.parse(line.slice(5));
  }
}
