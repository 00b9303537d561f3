/** `coordinator serve`: the production entry point. */
import type { Config } from "../config/config.js";
import { ConfigError } from "../config/config.js";
import { startCoordinator, type Coordinator } from "../coordinator.js";
import { openDatabase, type OpenedDatabase } from "../ledger/database.js";
import { startTelemetry, type Telemetry } from "../telemetry/sdk.js";
import { createLogger, type Logger } from "../util/logger.js";

export interface Running {
  config: Config;
  db: OpenedDatabase;
  coordinator: Coordinator;
  telemetry: Telemetry;
  log: Logger;
  stop(): Promise<void>;
}

/** Opens the database, installs telemetry and starts the coordinator. */
export async function startRunning(config: Config): Promise<Running> {
  const log = createLogger(config.logLevel);
  const telemetry = await startTelemetry(config);
  const db = await openDatabase({
    ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
    dataDir: config.dataDir,
    onLog: (line) => log.debug("postgres", { line }),
  });
  log.info("database ready", { embedded: !config.databaseUrl });
  const coordinator = await startCoordinator(config, { db: db.db, logger: log });
  let stopping: Promise<void> | undefined;
  return {
    config,
    db,
    coordinator,
    telemetry,
    log,
    stop: () =>
      (stopping ??= (async () => {
        await coordinator.close();
        await db.close();
        await telemetry.shutdown();
      })()),
  };
}

/** Resolves when SIGINT or SIGTERM arrives. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => () => resolve(sig);
    process.once("SIGINT", on("SIGINT"));
    process.once("SIGTERM", on("SIGTERM"));
  });
}

export async function runServe(config: Config, _env: NodeJS.ProcessEnv): Promise<number> {
  if (!config.adminKey) throw new ConfigError("ADMIN_KEY (or --admin-key) is required by `serve`: it authorises the admin API");
  const running = await startRunning(config);
  const sig = await untilSignal();
  running.log.info("shutting down", { signal: sig });
  await running.stop();
  return 0;
}
