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
  let coordinator: Coordinator;
  try {
    coordinator = await startCoordinator(config, { db: db.db, logger: log });
  } catch (e) {
    // E.g. a port already in use: stop the embedded PostgreSQL too, or it outlives us (and keeps us alive).
    await db.close().catch(() => undefined);
    await telemetry.shutdown().catch(() => undefined);
    throw e;
  }
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

/**
 * Graceful shutdown after the first signal: drain (in-flight requests finish, bounded by SHUTDOWN_GRACE_MS; a
 * second signal cuts the wait short), then `before` (the demo stops its fleet here), then stop everything.
 */
export async function shutDown(running: Running, signal: string, before?: () => Promise<void>): Promise<void> {
  running.log.info("shutting down", { signal, grace_ms: running.config.shutdownGraceMs });
  await Promise.race([
    running.coordinator.drain(running.config.shutdownGraceMs),
    untilSignal().then((again) => running.log.warn("second signal: closing without waiting", { signal: again })),
  ]);
  await before?.();
  await running.stop();
}

export async function runServe(config: Config, _env: NodeJS.ProcessEnv): Promise<number> {
  if (!config.adminKey) throw new ConfigError("ADMIN_KEY (or --admin-key) is required by `serve`: it authorises the admin API");
  const running = await startRunning(config);
  await shutDown(running, await untilSignal());
  return 0;
}
