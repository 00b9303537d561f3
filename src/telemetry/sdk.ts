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
    const sdk = new NodeSDK({ serviceName: service });
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
