/**
 * Installs the telemetry backends for the process (the entry point only): DogStatsD via hot-shots when
 * DD_AGENT_HOST is set, and the OpenTelemetry Node SDK when OTEL_EXPORTER_OTLP_ENDPOINT is set. Domain
 * code only ever uses ./metrics.ts.
 */
import StatsD from "hot-shots";
import type { Config } from "../config/config.js";
import { setStatsd } from "./metrics.js";

export interface Telemetry {
  shutdown(): Promise<void>;
}

/**
 * `service` is the default `service.name` (DogStatsD's `service` tag, and the OTel resource's unless
 * `OTEL_SERVICE_NAME` or `service.name` in `OTEL_RESOURCE_ATTRIBUTES` names another).
 */
export async function startTelemetry(config: Config, service = "coordinator"): Promise<Telemetry> {
  const closers: (() => Promise<void>)[] = [];
  if (config.ddAgentHost) {
    const client = new StatsD({
      host: config.ddAgentHost,
      port: config.ddDogstatsdPort,
      prefix: "coordinator.",
      globalTags: { service, ...(config.ddEnv ? { env: config.ddEnv } : {}) },
      errorHandler: () => undefined, // a missing agent must never take the coordinator down
    });
    setStatsd(client);
    closers.push(() => new Promise<void>((resolve) => client.close(() => resolve())));
  }
  if (config.otelEndpoint) {
    const { NodeSDK } = await import("@opentelemetry/sdk-node");
    const { defaultResource, resourceFromAttributes } = await import("@opentelemetry/resources");
    // The SDK's exporters read their endpoint from the environment only: hand them the value config resolved
    // (`--otel-exporter-otlp-endpoint` over the variable), so the flag behaves exactly like the variable
    // (every signal; OTEL_EXPORTER_OTLP_PROTOCOL and per-signal endpoints still apply).
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = config.otelEndpoint;
    // Our name is only the default resource: the SDK's environment detector (OTEL_SERVICE_NAME,
    // OTEL_RESOURCE_ATTRIBUTES) merges over it. `serviceName` would override both.
    const sdk = new NodeSDK({ resource: defaultResource().merge(resourceFromAttributes({ "service.name": service })) });
    sdk.start();
    closers.push(() => sdk.shutdown());
  }
  return {
    async shutdown() {
      setStatsd(undefined);
      await Promise.allSettled(closers.map((c) => c()));
    },
  };
}
