/**
 * `GET /metrics` (METRICS_PROMETHEUS=on): the OpenTelemetry Prometheus exporter served on the consumer port. A
 * scrape after a request shows the request counter with its bounded tags and the latency histogram's buckets
 * that reach minutes. Off by default: the path is then unknown.
 */
import assert from "node:assert/strict";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";
import { postJson } from "../../support/http.js";

describe("Prometheus: GET /metrics", function () {
  this.timeout(30_000);
  let t: TestCoordinator | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  const body = { model: "gpt-oss-20b", max_tokens: 8, messages: [{ role: "user", content: "Say hello" }] };

  it("serves the request counter, with route, model and outcome, after a request", async () => {
    t = await startTestCoordinator({ config: { metricsPrometheus: true }, macs: [{}] });
    const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, body);
    assert.equal(r.status, 200, r.text);
    const scrape = await fetch(`${t.baseUrl}/metrics`);
    assert.equal(scrape.status, 200);
    assert.match(scrape.headers.get("content-type") ?? "", /text\/plain/);
    const text = await scrape.text();
    const line = text
      .split("\n")
      .find(
        (l) =>
          l.startsWith("coordinator_requests_total{") &&
          l.includes('route="/v1/chat/completions"') &&
          l.includes('outcome="success"'),
      );
    assert.ok(
      line,
      text
        .split("\n")
        .filter((l) => l.includes("requests"))
        .join("\n"),
    );
    assert.match(line, /model="gpt-oss-20b"/);
    assert.match(line, /status="200"/);
    assert.ok(Number(line.split(" ").at(-1)) >= 1, line);
    // The TTFT histogram has buckets up to ten minutes.
    assert.ok(
      text.split("\n").some((l) => /^coordinator_inference_ttft_ms[a-z_]*_bucket\{.*le="600000"/.test(l)),
      "ttft buckets reach 10 minutes",
    );
  });

  it("is off by default: no /metrics on the consumer port", async () => {
    t = await startTestCoordinator({ macs: [{}] });
    const scrape = await fetch(`${t.baseUrl}/metrics`);
    assert.equal(scrape.status, 404);
    await scrape.text();
  });
});
