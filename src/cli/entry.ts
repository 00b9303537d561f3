/**
 * The `coordinator` command as deployed: `npm run build` compiles this to `dist/src/cli/entry.js`, run by plain
 * `node` (no tsx, no TypeScript at run time). `bin/coordinator.js` is the same for a clone, through tsx.
 */
import { setUndeclaredMetricPolicy } from "../telemetry/metrics.js";
import { createLogger } from "../util/logger.js";
import { main } from "./main.js";

// In production a metric the catalogue does not declare is dropped and logged once (tests leave the default: throw).
const metricsLog = createLogger("warn");
setUndeclaredMetricPolicy({ kind: "drop", log: (msg, fields) => metricsLog.warn(msg, fields) });
process.exitCode = await main(process.argv.slice(2), process.env);
