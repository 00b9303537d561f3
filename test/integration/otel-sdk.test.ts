/**
 * The OpenTelemetry SDK's configuration (issue 15, config bugs): `--otel-exporter-otlp-endpoint` reaches the
 * exporter (a loopback OTLP/HTTP receiver gets the POST to /v1/traces), and the service name is ours only by
 * default: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { context, propagation, trace } from "@opentelemetry/api";
import { loadConfig } from "../../src/config/config.js";
import { startTelemetry } from "../../src/telemetry/sdk.js";

const otelVars = [
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "OTEL_SERVICE_NAME",
  "OTEL_RESOURCE_ATTRIBUTES",
  "OTEL_METRICS_EXPORTER",
  "OTEL_LOGS_EXPORTER",
  "OTEL_TRACES_EXPORTER",
  "OTEL_EXPORTER_OTLP_PROTOCOL",
] as const;

describe("telemetry: the OpenTelemetry SDK's configuration", function () {
  this.timeout(20_000);
  let server: Server;
  let received: { path: string; body: Buffer }[];
  let url: string;
  let saved: Partial<Record<(typeof otelVars)[number], string>>;

  beforeEach(async () => {
    received = [];
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push({ path: req.url ?? "", body: Buffer.concat(chunks) });
        res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    saved = {};
    for (const k of otelVars) {
      if (process.env[k] !== undefined) saved[k] = process.env[k];
      delete process.env[k];
    }
    // Only traces: the metric and log pipelines are other tests' business (and globals).
    process.env.OTEL_METRICS_EXPORTER = "none";
    process.env.OTEL_LOGS_EXPORTER = "none";
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = "http/json"; // readable here
    trace.disable();
  });
  afterEach(async () => {
    trace.disable();
    context.disable();
    propagation.disable();
    for (const k of otelVars) delete process.env[k];
    Object.assign(process.env, saved);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** The exported resource's attributes and span names of one OTLP/JSON traces request. */
  function decode(body: Buffer): { resource: Record<string, unknown>; spans: string[] } {
    type KV = { key: string; value: { stringValue?: string } };
    const j = JSON.parse(body.toString("utf8")) as {
      resourceSpans: { resource: { attributes: KV[] }; scopeSpans: { spans: { name: string }[] }[] }[];
    };
    const rs = j.resourceSpans[0]!;
    return {
      resource: Object.fromEntries(rs.resource.attributes.map((a) => [a.key, a.value.stringValue])),
      spans: rs.scopeSpans.flatMap((s) => s.spans.map((x) => x.name)),
    };
  }

  /** Starts the SDK from `argv`, ends one span, shuts down (which flushes), and returns what the receiver got. */
  async function exportOneSpan(argv: string[]): Promise<{ path: string; body: Buffer }[]> {
    const telemetry = await startTelemetry(loadConfig({}, argv));
    trace.getTracer("test").startSpan("probe").end();
    await telemetry.shutdown();
    return received;
  }

  it("sends traces to the endpoint given by --otel-exporter-otlp-endpoint", async () => {
    const got = await exportOneSpan(["--otel-exporter-otlp-endpoint", url]);
    const traces = got.filter((r) => r.path === "/v1/traces");
    assert.equal(traces.length, 1, `requests: ${got.map((r) => r.path).join(", ")}`);
    const { resource, spans } = decode(traces[0]!.body);
    assert.deepEqual(spans, ["probe"]);
    assert.equal(resource["service.name"], "coordinator", "the default service name");
  });

  it("lets OTEL_SERVICE_NAME name the service", async () => {
    process.env.OTEL_SERVICE_NAME = "coordinator-eu-1";
    const got = await exportOneSpan(["--otel-exporter-otlp-endpoint", url]);
    assert.equal(decode(got.find((r) => r.path === "/v1/traces")!.body).resource["service.name"], "coordinator-eu-1");
  });

  it("lets service.name in OTEL_RESOURCE_ATTRIBUTES name the service", async () => {
    process.env.OTEL_RESOURCE_ATTRIBUTES = "service.name=from-attributes,deployment.environment.name=staging";
    const got = await exportOneSpan(["--otel-exporter-otlp-endpoint", url]);
    const { resource } = decode(got.find((r) => r.path === "/v1/traces")!.body);
    assert.equal(resource["service.name"], "from-attributes");
    assert.equal(resource["deployment.environment.name"], "staging");
  });
});
