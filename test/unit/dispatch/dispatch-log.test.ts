/**
 * The dispatcher's operator log: every provider fault is one warn line and every failover, backup and cancel
 * decision one info line, each with request_id, provider_id, model, attempt and reason.
 */
import assert from "node:assert/strict";
import { complete, flush, harness, RecordingLogger, type LogLine } from "../../support/dispatch-harness.js";

const content = (t: string) => ({ kind: "chunk" as const, deltas: [{ kind: "content" as const, text: t }] });

/** The one line with this level and message for `providerId`; its fields must include `want`. */
function line(log: RecordingLogger, level: LogLine["level"], msg: string, want: Record<string, unknown>): LogLine {
  const found = log.lines.filter(
    (l) => l.level === level && l.msg === msg && l.fields.provider_id === want.provider_id,
  );
  assert.equal(
    found.length,
    1,
    `one ${level} "${msg}" for ${String(want.provider_id)} in ${JSON.stringify(log.lines, null, 1)}`,
  );
  const l = found[0]!;
  for (const [k, v] of Object.entries(want)) assert.deepEqual(l.fields[k], v, `${msg}: ${k}`);
  return l;
}

describe("dispatch operator log", () => {
  it("logs an error before content as a warn fault, then the failover decision at info", async () => {
    const log = new RecordingLogger();
    const h = harness(["a", "b"], { log });
    const { result } = h.run();
    await flush();
    const [a, b] = [h.channels.get("a")!, h.channels.get("b")!];
    a.emit({ kind: "error", statusCode: 500, message: "metal crashed", reason: "internal" });
    await flush();
    const base = { request_id: "r1", model: "m", provider_id: a.providerId, attempt: 1 };
    line(log, "warn", "provider failed before commit", {
      ...base,
      reason: "provider_error",
      status: 500,
      message: "metal crashed",
      provider_reason: "internal",
    });
    line(log, "info", "failing over", { ...base, reason: "provider_error" });
    line(log, "debug", "inference dispatched", {
      request_id: "r1",
      model: "m",
      provider_id: b.providerId,
      attempt: 2,
      reason: "failover",
    });
    b.emit(complete);
    await result;
    assert.ok(
      !log.lines.some((l) => l.level === "warn" && l.fields.provider_id === b.providerId),
      "no fault logged for the healthy provider",
    );
  });

  it("logs a first-token timeout as a fault and the failover", async () => {
    const log = new RecordingLogger();
    const h = harness(["a", "b"], { log });
    const { result } = h.run();
    await flush();
    const a = h.channels.get("a")!;
    h.clock.advance(1_001);
    await flush();
    const base = { request_id: "r1", model: "m", provider_id: a.providerId, attempt: 1 };
    line(log, "warn", "provider failed before commit", { ...base, reason: "first_token_timeout", status: 504 });
    line(log, "info", "failing over", { ...base, reason: "first_token_timeout" });
    h.channels.get("b")!.emit(complete);
    await result;
  });

  it("logs a stall after commit as a warn fault that ended the stream with an in-band error", async () => {
    const log = new RecordingLogger();
    const h = harness(["a"], { log, options: { idleTimeoutMs: 3_000 } });
    const { result } = h.run();
    await flush();
    const a = h.channels.get("a")!;
    a.emit(content("partial"));
    h.clock.advance(3_001);
    await result;
    line(log, "warn", "provider failed after commit; in-band error sent", {
      request_id: "r1",
      model: "m",
      provider_id: a.providerId,
      attempt: 1,
      reason: "stalled",
      content_chars: 7,
    });
  });

  it("logs an in-band error (a provider error after content) with the provider's reason", async () => {
    const log = new RecordingLogger();
    const h = harness(["a", "b"], { log });
    const { result } = h.run();
    await flush();
    const a = h.channels.get("a")!;
    a.emit(content("half"));
    a.emit({ kind: "error", statusCode: 500, message: "oom", reason: "insufficient_memory" });
    const r = await result;
    assert.equal(r.kind === "failed" && r.committed, true);
    line(log, "warn", "provider failed after commit; in-band error sent", {
      request_id: "r1",
      model: "m",
      provider_id: a.providerId,
      attempt: 1,
      reason: "provider_error",
      provider_reason: "insufficient_memory",
      status: 500,
    });
    assert.ok(!log.lines.some((l) => l.msg === "failing over"), "no failover after commit");
  });

  it("logs a disconnect mid-request as a fault", async () => {
    const log = new RecordingLogger();
    const h = harness(["a", "b"], { log });
    const { result } = h.run();
    await flush();
    const a = h.channels.get("a")!;
    a.emit({ kind: "disconnected", message: "provider stream closed" });
    await flush();
    line(log, "warn", "provider failed before commit", {
      request_id: "r1",
      model: "m",
      provider_id: a.providerId,
      attempt: 1,
      reason: "disconnected",
      status: 502,
    });
    h.channels.get("b")!.emit(complete);
    await result;
  });

  it("logs a speculative backup, and the rival it beat being cancelled, at info", async () => {
    const log = new RecordingLogger();
    const h = harness(["a", "b"], { log, options: { speculativeFraction: 0.5 } });
    const { result } = h.run();
    await flush();
    const [a, b] = [h.channels.get("a")!, h.channels.get("b")!];
    h.clock.advance(500);
    await flush();
    line(log, "info", "speculative backup dispatched", {
      request_id: "r1",
      model: "m",
      provider_id: b.providerId,
      attempt: 2,
      reason: "slow_first_token",
      primary_provider_id: a.providerId,
    });
    b.emit(content("x"));
    line(log, "info", "attempt cancelled", {
      request_id: "r1",
      model: "m",
      provider_id: a.providerId,
      attempt: 1,
      reason: "lost_race",
      winner_provider_id: b.providerId,
    });
    b.emit(complete);
    await result;
  });

  it("logs the cancel when the consumer hangs up", async () => {
    const log = new RecordingLogger();
    const h = harness(["a"], { log });
    const { result, abort } = h.run();
    await flush();
    const a = h.channels.get("a")!;
    a.emit(content("x"));
    abort.abort();
    await result;
    line(log, "info", "attempt cancelled", {
      request_id: "r1",
      model: "m",
      provider_id: a.providerId,
      attempt: 1,
      reason: "client_disconnected",
      committed: true,
    });
  });
});
