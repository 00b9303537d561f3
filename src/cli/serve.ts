/** `coordinator serve`: the production entry point. */
import type { Config } from "../config/config.js";
import { checkAdminKey, ConfigError } from "../config/config.js";
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
    const on = (sig: NodeJS.Signals) => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
      resolve(sig);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}

/**
 * Graceful shutdown after the first signal: drain (in-flight requests finish, bounded by SHUTDOWN_GRACE_MS),
 * then `before` (the demo stops its fleet here), then stop everything. A second signal skips the rest of the
 * drain; a third exits at once (status 130), for an operator who cannot wait for the close either.
 */
export async function shutDown(running: Running, signal: string, before?: () => Promise<void>): Promise<void> {
  let seen = 1;
  let skipDrain: () => void = () => undefined;
  const drainSkipped = new Promise<void>((resolve) => (skipDrain = resolve));
  const onSignal = (again: NodeJS.Signals) => {
    seen++;
    if (seen === 2) {
      running.log.warn("second signal: closing without waiting for requests in flight (a third exits at once)", {
        signal: again,
      });
      skipDrain();
      return;
    }
    running.log.error("third signal: exiting now", { signal: again });
    process.exit(130);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    running.log.info("shutting down", { signal, grace_ms: running.config.shutdownGraceMs });
    await Promise.race([running.coordinator.drain(running.config.shutdownGraceMs), drainSkipped]);
    await before?.();
    await running.stop();
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

export async function runServe(config: Config, _env: NodeJS.ProcessEnv): Promise<number> {
  if (!config.adminKey)
    throw new ConfigError("ADMIN_KEY (or --admin-key) is required by `serve`: it authorises the admin API");
  checkAdminKey(config.adminKey);
  const running = await startRunning(config);
  await shutDown(running, await untilSignal());
  return 0;
}
