/**
 * Overload is answered honestly: when every capable Mac is busy, requests wait in a bounded per-model queue;
 * beyond it they get 429 with a Retry-After computed from the measured completion rate (never 503, never a
 * hang), and retrying after the hinted wait succeeds.
 */
import assert from "node:assert/strict";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { postJson, type RawResponse } from "../support/http.js";

describe("honest queueing under overload", function () {
  this.timeout(40_000);
  let t: TestCoordinator;
  afterEach(async () => t?.close());

  const body = { model: "gpt-oss-20b", max_tokens: 64, messages: [{ role: "user", content: "tell me something" }] };

  it("queues what fits, answers the rest 429 + Retry-After, and serves them after the hinted wait", async () => {
    t = await startTestCoordinator({
      config: { queueLimit: 2, queueWaitMs: 20_000 },
      // One Mac, two concurrent streams, each answer ~40 tokens at ~70 tok/s: about half a second per request.
      macs: [{ maxConcurrency: 2, instant: false, timeScale: 1, diskGbs: 1_000, naturalTokens: { min: 40, max: 40 } }],
    });
    const url = `${t.apiBase}/chat/completions`;
    // Warm up the completion-rate estimate so Retry-After is measured, not a default.
    await Promise.all([postJson(url, t.apiKey, body), postJson(url, t.apiKey, body)]);

    const started = performance.now();
    const burst = await Promise.all(Array.from({ length: 8 }, () => postJson(url, t.apiKey, body)));
    const ok = burst.filter((r) => r.status === 200);
    const refused = burst.filter((r) => r.status !== 200);
    assert.equal(ok.length, 4, "two running + two queued are served");
    assert.equal(refused.length, 4);
    for (const r of refused) {
      assert.equal(r.status, 429, "overload is a 429, not a 503");
      const err = (JSON.parse(r.text) as { error: { code: string; message: string } }).error;
      assert.equal(err.code, "rate_limit_exceeded");
      assert.match(err.message, /queue for gpt-oss-20b is full/);
      const retryAfter = Number(r.headers.get("retry-after"));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    }
    assert.ok(Math.max(...refused.map((r) => r.elapsedMs)) < 500, "refusals are immediate, not a hang");
    assert.ok(performance.now() - started < 10_000);

    // Each refused client waits what it was told, then retries: the queue has drained, so all succeed.
    const retried: RawResponse[] = await Promise.all(
      refused.map(async (r) => {
        await new Promise((resolve) => setTimeout(resolve, Number(r.headers.get("retry-after")) * 1000));
        return postJson(url, t.apiKey, body);
      }),
    );
    assert.deepEqual(
      retried.map((r) => r.status),
      [200, 200, 200, 200],
    );
  });

  it("serves queued requests in arrival order as capacity frees up", async () => {
    t = await startTestCoordinator({
      config: { queueLimit: 10 },
      macs: [{ maxConcurrency: 1, instant: false, timeScale: 1, diskGbs: 1_000, naturalTokens: { min: 20, max: 20 } }],
    });
    const url = `${t.apiBase}/chat/completions`;
    const finished: number[] = [];
    const runs = [];
    for (let i = 0; i < 4; i++) {
      runs.push(
        postJson(url, t.apiKey, { ...body, messages: [{ role: "user", content: `request ${i}` }] }).then(
          (r) => (finished.push(i), r),
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 30)); // a known arrival order
    }
    const results = await Promise.all(runs);
    assert.deepEqual(
      results.map((r) => r.status),
      [200, 200, 200, 200],
      results.map((r) => r.text.slice(0, 200)).join("\n"),
    );
    assert.deepEqual(finished, [0, 1, 2, 3], "first come, first served");
  });

  it("reports queue depth and limits on the public capacity endpoint", async () => {
    t = await startTestCoordinator({ macs: [{}, {}] });
    const cap = (await (await fetch(`${t.apiBase}/models/capacity`)).json()) as { models: Record<string, unknown>[] };
    const row = cap.models.find((m) => m.id === "gpt-oss-20b")!;
    for (const k of [
      "routable_providers",
      "warm_providers",
      "cold_providers",
      "active_requests",
      "queued_requests",
      "queue_limit",
      "aggregate_tps",
      "estimated_ttft_ms",
      "token_budget_remaining",
      "token_budget_total",
    ]) {
      assert.equal(typeof row[k], "number", `${k} is reported`);
    }
    assert.equal(row.routable_providers, 2);
    assert.equal(row.queue_limit, 10);
    assert.ok((row.token_budget_total as number) > 0);
  });
});
