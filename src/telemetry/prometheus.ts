/**
 * The optional Prometheus endpoint (`METRICS_PROMETHEUS=on`): an OpenTelemetry MeterProvider whose reader is the
 * OTel Prometheus exporter, added next to the global provider, so `GET /metrics` serves the same catalogued
 * instruments (with units and the catalogue's buckets) as OTLP and DogStatsD. The exporter's own HTTP server is
 * not started: the coordinator serves the handler on its consumer port.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { addMeterProvider } from "./metrics.js";

export interface PrometheusEndpoint {
  /** Answers one scrape (text exposition format 0.0.4). */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Detaches the provider from the metrics facade and shuts it down. */
  close(): Promise<void>;
}

/** Creates the reader and attaches it to the metrics facade. */
export function createPrometheusEndpoint(): PrometheusEndpoint {
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
  const provider = new MeterProvider({ readers: [exporter] });
  const detach = addMeterProvider(provider);
  return {
    handle: (req, res) => exporter.getMetricsRequestHandler(req, res),
    async close() {
      detach();
      await provider.shutdown();
    },
  };
}
