/**
 * A private `nats-server` with JetStream for tests: its own free port, its store in a temp folder, and a
 * `ping_interval` of seconds instead of the 2-minute default, so a frozen (SIGSTOPped) client's subscriptions
 * go away within a test's patience. `stop()` then `start()` restarts it on the same port (the "NATS restart"
 * scenario); `kill()` is SIGKILL. The machine's own NATS on 4222 is never touched.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { freePorts } from "./coordinator-process.js";

/** Debian's nats-server (node-svc installs it from Debian; 2.9.10 here). */
export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";

export interface NatsServerOptions {
  /** Server ping interval, s: a client that answers no ping for `pingIntervalS × pingMax` is cut (default 2). */
  pingIntervalS?: number;
  /** Unanswered pings before the server cuts a client (default 2). */
  pingMax?: number;
  /** How long a write to a slow client may block before the server cuts it, s (default 5; the server's is 10). */
  writeDeadlineS?: number;
  /** How long to wait for the server to accept a client, ms (default 10_000). */
  readyTimeoutMs?: number;
}

export interface NatsServer {
  port: number;
  /** True while the server process runs. */
  readonly running: boolean;
  /** `nats://127.0.0.1:PORT`. */
  url: string;
  /** The JetStream store folder (kept across stop/start, removed by close()). */
  storeDir: string;
  /** Starts the server (again) on the same port; resolves once a client can connect. */
  start(): Promise<void>;
  /** SIGTERM (a clean shutdown), resolved once the process is gone. */
  stop(): Promise<void>;
  /** SIGKILL, resolved once the process is gone. */
  kill(): Promise<void>;
  /** Everything the current and earlier processes wrote (for failure messages). */
  output(): string;
  /** Stops the server if running and removes its folder. */
  close(): Promise<void>;
}

/** Starts a private nats-server with JetStream on a free loopback port. */
export async function startNatsServer(o: NatsServerOptions = {}): Promise<NatsServer> {
  const [port] = (await freePorts(1)) as [number];
  const dir = await mkdtemp(join(tmpdir(), "nats-test-"));
  const storeDir = join(dir, "js");
  const configPath = join(dir, "nats.conf");
  await writeFile(
    configPath,
    [
      `listen: "127.0.0.1:${port}"`,
      `ping_interval: "${o.pingIntervalS ?? 2}s"`,
      `ping_max: ${o.pingMax ?? 2}`,
      `write_deadline: "${o.writeDeadlineS ?? 5}s"`,
      `jetstream { store_dir: "${storeDir}" }`,
      "",
    ].join("\n"),
  );
  const url = `nats://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let out = "";

  const start = async () => {
    if (child) throw new Error("nats-server is already running");
    const c = spawn(NATS_SERVER_BIN, ["-c", configPath], { stdio: ["ignore", "pipe", "pipe"] });
    child = c;
    c.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    c.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    let gone = false;
    exited = new Promise<void>((resolve) =>
      c.once("exit", () => {
        gone = true;
        if (child === c) child = undefined;
        resolve();
      }),
    );
    c.once("error", (e) => (out += `spawn error: ${e.message}\n`));
    const timeoutMs = o.readyTimeoutMs ?? 10_000;
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (gone) throw new Error(`nats-server exited before it was ready:\n${out}`);
      try {
        // A real client handshake (INFO, CONNECT, PING/PONG) is the readiness that matters to the coordinators.
        const nc = await connect({ servers: url, reconnect: false, timeout: 500 });
        await nc.close();
        return;
      } catch {
        // not listening yet
      }
      if (Date.now() > until) {
        c.kill("SIGKILL");
        throw new Error(`nats-server not ready after ${timeoutMs} ms:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const signal = async (sig: NodeJS.Signals) => {
    child?.kill(sig);
    await exited;
  };

  await start();
  return {
    port,
    get running() {
      return child !== undefined;
    },
    url,
    storeDir,
    start,
    stop: () => signal("SIGTERM"),
    kill: () => signal("SIGKILL"),
    output: () => out,
    async close() {
      await signal("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    },
  };
}
