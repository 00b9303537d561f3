#!/usr/bin/env node
// Entry point of the `coordinator` command. The sources are TypeScript run through tsx (a runtime
// dependency), so there is no build step between a clone and a running coordinator.
import { register } from "tsx/esm/api";

register();
// In production a metric the catalogue does not declare is dropped and logged once (tests leave the default: throw).
const { setUndeclaredMetricPolicy } = await import("../src/telemetry/metrics.ts");
const { createLogger } = await import("../src/util/logger.ts");
const metricsLog = createLogger("warn");
setUndeclaredMetricPolicy({ kind: "drop", log: (msg, fields) => metricsLog.warn(msg, fields) });
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2), process.env);
