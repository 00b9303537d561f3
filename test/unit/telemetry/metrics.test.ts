import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type HistogramMetricData,
} from "@opentelemetry/sdk-metrics";
import StatsD from "hot-shots";
import { metricCatalogue } from "../../../src/telemetry/metric-catalogue.js";
import {
  addMeterProvider,
  count,
  gauge,
  observe,
  reportGaugesEvery,
  setStatsd,
  setUndeclaredMetricPolicy,
} from "../../../src/telemetry/metrics.js";
import { fakeStatsd } from "../../support/fake-statsd.js";

describe("telemetry facade", () => {
  afterEach(() => {
    setStatsd(undefined);
    setUndeclaredMetricPolicy({ kind: "throw" });
  });

  it("sends counters, distributions and gauges to DogStatsD with tags over UDP", async () => {
    const socket = createSocket("udp4");
    await new Promise<void>((r) => socket.bind(0, "127.0.0.1", () => r()));
    const lines: string[] = [];
    socket.on("message", (m) => lines.push(...m.toString().split("\n").filter(Boolean)));
    const client = new StatsD({
      host: "127.0.0.1",
      port: socket.address().port,
      prefix: "coordinator.",
      maxBufferSize: 0,
    });
    setStatsd(client);
    count("inference.dispatches", { status: "retry_precontent" });
    observe("inference.ttft_ms", 42, { model: "gpt-oss-20b" });
    gauge("providers.connected", 7);
    const until = Date.now() + 2_000;
    while (lines.length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    await new Promise<void>((r) => client.close(() => r()));
    socket.close();
    assert.ok(lines.includes("coordinator.inference.dispatches:1|c|#status:retry_precontent"), lines.join("\n"));
    assert.ok(lines.includes("coordinator.inference.ttft_ms:42|d|#model:gpt-oss-20b"), lines.join("\n"));
    assert.ok(lines.includes("coordinator.providers.connected:7|g"), lines.join("\n"));
  });

  it("is a no-op without a DogStatsD client (OpenTelemetry's API no-ops until an SDK is installed)", () => {
    assert.doesNotThrow(() => {
      count("provider.disconnects");
      observe("ledger.write_ms", 1);
      gauge("ledger.queued", 1);
    });
  });

  it("throws on a metric name, a type or a tag key the catalogue does not declare (the test policy)", () => {
    assert.throws(() => count("inference.made_up"), /not in the metric catalogue/);
    assert.throws(() => observe("requests", 1), /is a counter, recorded as a distribution/);
    assert.throws(() => count("requests", { request_id: "req-1" }), /tag request_id is not declared/);
  });

  it("drops an undeclared metric or tag in production and logs each once", () => {
    const logged: string[] = [];
    const lines: string[] = [];
    setUndeclaredMetricPolicy({ kind: "drop", log: (msg) => logged.push(msg) });
    setStatsd(fakeStatsd(lines));
    count("inference.made_up");
    count("inference.made_up");
    count("provider.fenced", { api_key: "sk-secret", provider_id: "prov-1" });
    count("provider.fenced", { api_key: "sk-secret", provider_id: "prov-1" });
    assert.deepEqual(lines, ["provider.fenced:1|c|#provider_id:prov-1", "provider.fenced:1|c|#provider_id:prov-1"]);
    assert.equal(logged.length, 2, logged.join("\n"));
    assert.match(logged[0]!, /inference\.made_up is not in the metric catalogue; dropped/);
    assert.match(logged[1]!, /tag api_key is not declared for metric provider\.fenced; dropped/);
  });

  it("re-sends every gauge on the interval, not only when it changes", async () => {
    const lines: string[] = [];
    setStatsd(fakeStatsd(lines));
    let refreshes = 0;
    gauge("request_queue.depth", 3, { model: "interval-test" });
    const stop = reportGaugesEvery(20, () => refreshes++);
    await new Promise((r) => setTimeout(r, 110));
    stop();
    const resent = lines.filter((l) => l === "request_queue.depth:3|g|#model:interval-test").length;
    assert.ok(resent >= 3, `sent ${resent} times: ${lines.join(" ")}`);
    assert.ok(refreshes >= 3, `refreshed ${refreshes} times`);
  });

  it("gives OpenTelemetry the catalogue's units and latency buckets that reach minutes", async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const provider = new MeterProvider({ readers: [reader] });
    const detach = addMeterProvider(provider);
    try {
      observe("inference.ttft_ms", 95_000, { model: "otel-test" });
      count("tokens.output", { model: "otel-test" }, 12);
      await reader.forceFlush();
    } finally {
      detach();
    }
    const all = exporter.getMetrics().flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics));
    const ttft = all.find((m) => m.descriptor.name === "coordinator.inference.ttft_ms") as
      | HistogramMetricData
      | undefined;
    assert.ok(ttft, "ttft exported");
    assert.equal(ttft.descriptor.unit, "ms");
    const boundaries = ttft.dataPoints[0]!.value.buckets.boundaries;
    assert.ok(boundaries.includes(120_000) && boundaries.includes(600_000), `boundaries ${boundaries.join(",")}`);
    const tokens = all.find((m) => m.descriptor.name === "coordinator.tokens.output");
    assert.equal(tokens?.descriptor.unit, "{token}");
    await provider.shutdown();
  });

  it("declares every metric with a description and tags that never name a request, key or account", () => {
    for (const [name, spec] of Object.entries(metricCatalogue)) {
      assert.ok(spec.description.length > 10, `${name} has a description`);
      assert.ok(spec.unit.length > 0, `${name} has a unit`);
      for (const t of spec.tags) assert.ok(!/request_id|key|account|serial/.test(t), `${name} tag ${t} is unbounded`);
    }
  });
});
