import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import StatsD from "hot-shots";
import { count, gauge, observe, setStatsd } from "../../../src/telemetry/metrics.js";

describe("telemetry facade", () => {
  afterEach(() => setStatsd(undefined));

  it("sends counters, histograms and gauges to DogStatsD with tags over UDP", async () => {
    const socket = createSocket("udp4");
    await new Promise<void>((r) => socket.bind(0, "127.0.0.1", () => r()));
    const lines: string[] = [];
    socket.on("message", (m) => lines.push(...m.toString().split("\n").filter(Boolean)));
    const client = new StatsD({ host: "127.0.0.1", port: socket.address().port, prefix: "coordinator.", maxBufferSize: 0 });
    setStatsd(client);
    count("inference.dispatches", { status: "retry_precontent" });
    observe("inference.ttft_ms", 42, { model: "gpt-oss-20b" });
    gauge("providers.connected", 7);
    const until = Date.now() + 2_000;
    while (lines.length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    await new Promise<void>((r) => client.close(() => r()));
    socket.close();
    assert.ok(lines.includes("coordinator.inference.dispatches:1|c|#status:retry_precontent"), lines.join("\n"));
    assert.ok(lines.includes("coordinator.inference.ttft_ms:42|h|#model:gpt-oss-20b"), lines.join("\n"));
    assert.ok(lines.includes("coordinator.providers.connected:7|g"), lines.join("\n"));
  });

  it("is a no-op without a DogStatsD client (OpenTelemetry's API no-ops until an SDK is installed)", () => {
    assert.doesNotThrow(() => {
      count("x");
      observe("y_ms", 1);
      gauge("z", 1, { a: 1 });
    });
  });
});
