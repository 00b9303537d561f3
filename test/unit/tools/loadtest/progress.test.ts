import assert from "node:assert/strict";
import { CellProgress, formatProgressLine } from "../../../../src/tools/loadtest/progress.js";
import type { RequestRecord } from "../../../../src/tools/loadtest/types.js";

const base = { label: "512x8", elapsedMs: 4_000, errors: 1, p50Ms: 1_200, tokPerS: 340.4 };

function record(ok: boolean, latencyMs: number, completionTokens: number): RequestRecord {
  return {
    seq: 0,
    worker: 0,
    startMs: 0,
    ttfbMs: 1,
    ttftMs: 1,
    latencyMs,
    status: ok ? 200 : 503,
    ok,
    promptTokens: 0,
    completionTokens,
    tokensSource: "usage",
    errorClass: ok ? null : "billing_503",
    errorCode: null,
    errorMessage: null,
  };
}

describe("loadtest progress", () => {
  it("formats a requests-mode line with a proportional bar", () => {
    const line = formatProgressLine({ ...base, done: 5, total: 10, durationMs: null }, 10);
    assert.equal(line, "512x8        [#####.....] 5/10 err 1 p50 1.2s 340 tok/s 4.0s");
  });

  it("formats a duration-mode line and marks draining after the duration", () => {
    assert.match(formatProgressLine({ ...base, done: 3, total: null, durationMs: 8_000 }, 4), /\[##\.\.\] 3 done /);
    assert.match(
      formatProgressLine({ ...base, elapsedMs: 9_000, done: 3, total: null, durationMs: 8_000 }, 4),
      /\[####\].*\(draining\)$/,
    );
  });

  it("redraws in place on a TTY and ends the line when finished", () => {
    const writes: string[] = [];
    let now = 0;
    const p = new CellProgress({
      stream: { isTTY: true, write: (s: string) => writes.push(s) },
      label: "a",
      stop: { kind: "requests", count: 2 },
      now: () => now,
    });
    now = 2_000;
    p.record(record(true, 100, 30));
    p.record(record(false, 5, 0));
    assert.deepEqual(
      { ...p.state(), elapsedMs: 0 },
      { label: "a", done: 2, total: 2, elapsedMs: 0, durationMs: null, errors: 1, p50Ms: 100, tokPerS: 15 },
    );
    p.finish();
    assert.ok(writes.every((w) => w.startsWith("\r")));
    assert.ok(writes.at(-1)!.endsWith("\n"));
    assert.match(writes.at(-1)!, /2\/2 err 1 p50 100ms 15 tok\/s/);
  });

  it("writes plain lines when not a TTY", () => {
    const writes: string[] = [];
    const p = new CellProgress({
      stream: { write: (s: string) => writes.push(s) },
      label: "b",
      stop: { kind: "duration", durationMs: 1_000 },
    });
    p.finish();
    assert.equal(writes.length, 1);
    assert.ok(!writes[0]!.includes("\r") && writes[0]!.endsWith("\n"));
  });
});
