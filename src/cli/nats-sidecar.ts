/**
 * A throwaway NATS server for `demo --nodes N` when no `--cluster` URL is given: `nats-server` from the PATH with
 * JetStream, on a free loopback port, its store in a temp folder removed at stop. A demo convenience only; a
 * deployment runs its own NATS and passes `--cluster`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** How long the sidecar may take to accept connections before the demo gives up. */
const NATS_READY_TIMEOUT_MS = 10_000;

export interface NatsSidecar {
  url: string;
  stop(): Promise<void>;
}

export async function startNatsSidecar(binary = "nats-server"): Promise<NatsSidecar> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "coordinator-nats-"));
  const child: ChildProcess = spawn(binary, ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir], {
    stdio: "ignore",
  });
  const spawned = new Promise<void>((_resolve, reject) =>
    child.once("error", (e) =>
      reject(
        new Error(
          `demo --nodes needs NATS: could not start ${binary} (${e.message}); install nats-server or pass --cluster nats://host:4222`,
        ),
      ),
    ),
  );
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.race([untilAccepting(port, NATS_READY_TIMEOUT_MS), spawned]);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url: `nats://127.0.0.1:${port}`, stop };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function untilAccepting(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = createConnection({ host: "127.0.0.1", port }, () => {
        c.end();
        resolve(true);
      });
      c.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until)
      throw new Error(`nats-server did not accept connections on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
