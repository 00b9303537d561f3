/**
 * The real `coordinator` command as a child process (`node bin/coordinator.js ...`), for tests that must kill
 * it (`kill -9`) and restart it, plus the Connect admin API over JSON and the `ledger verify` subcommand.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../../bin/coordinator.js", import.meta.url));

/** `n` distinct loopback ports that were free a moment ago (held open together so they differ). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export interface CoordinatorProcessOptions {
  databaseUrl: string;
  httpPort: number;
  grpcPort: number;
  adminKey: string;
  /** Extra environment (settings by env name, e.g. `LEDGER_HOLDER_STALE_MS`). */
  env?: Record<string, string>;
  /** How long to wait for `/health`, ms. Default 20_000. */
  readyTimeoutMs?: number;
  /** Extra `serve` flags (e.g. `--cluster nats://...`). */
  args?: string[];
}

export interface CoordinatorProcess {
  child: ChildProcess;
  baseUrl: string;
  /** Everything the process wrote to stdout and stderr so far (for failure messages). */
  output(): string;
  /** SIGKILL, resolved once the process is gone. */
  kill9(): Promise<void>;
  /** SIGTERM (graceful shutdown), resolved with the exit code. */
  stop(): Promise<number | null>;
  /** False once the process has exited. */
  readonly running: boolean;
  /** SIGSTOP: the process freezes with its sockets open (a long GC pause, a hung host). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

/** Spawns `coordinator serve` and resolves once `/health` answers 200. */
export async function startCoordinatorProcess(o: CoordinatorProcessOptions): Promise<CoordinatorProcess> {
  const child = spawn(
    process.execPath,
    [
      bin,
      "serve",
      "--database-url",
      o.databaseUrl,
      "--host",
      "127.0.0.1",
      "--http-port",
      String(o.httpPort),
      "--grpc-port",
      String(o.grpcPort),
      ...(o.args ?? []),
    ],
    {
      env: {
        ...process.env,
        ADMIN_KEY: o.adminKey,
        LOG_LEVEL: "warn",
        OTEL_EXPORTER_OTLP_ENDPOINT: "",
        DD_AGENT_HOST: "",
        ...o.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  const baseUrl = `http://127.0.0.1:${o.httpPort}`;
  const until = Date.now() + (o.readyTimeoutMs ?? 20_000);
  for (;;) {
    if (gone) throw new Error(`coordinator exited before it was ready:\n${out}`);
    try {
      const r = await fetch(`${baseUrl}/health`);
      if (r.status === 200) {
        await r.arrayBuffer();
        break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > until) {
      child.kill("SIGKILL");
      throw new Error(`coordinator not ready after ${o.readyTimeoutMs ?? 20_000} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    baseUrl,
    output: () => out,
    get running() {
      return !gone;
    },
    async kill9() {
      if (!gone) child.kill("SIGKILL");
      await exited;
    },
    async stop() {
      if (!gone) child.kill("SIGTERM");
      return exited;
    },
    pause() {
      if (!gone) child.kill("SIGSTOP");
    },
    resume() {
      if (!gone) child.kill("SIGCONT");
    },
  };
}

/** Calls one AdminService method over Connect JSON (int64 fields are JSON strings). Throws on a non-200. */
export async function adminCall<T = Record<string, unknown>>(
  baseUrl: string,
  adminKey: string,
  method: string,
  body: Record<string, unknown>,
): Promise<T> {
  const r = await fetch(`${baseUrl}/coordinator.admin.v1.AdminService/${method}`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`${method}: HTTP ${r.status} ${text}`);
  return JSON.parse(text) as T;
}

/**
 * Through the admin API, as an operator would: a funded consumer account with an API key, and an owner account
 * with a provider token for the Macs.
 */
export async function provisionOverAdmin(
  baseUrl: string,
  adminKey: string,
  o: { tier: "ACCOUNT_TIER_CONSUMER" | "ACCOUNT_TIER_SERVICE"; creditMicroUsd: bigint },
): Promise<{ accountId: string; apiKey: string; providerToken: string }> {
  type Account = { account: { id: string } };
  const consumer = await adminCall<Account>(baseUrl, adminKey, "CreateAccount", {
    name: "consumer",
    tier: o.tier,
    initialCreditMicroUsd: o.creditMicroUsd.toString(),
  });
  const { apiKey } = await adminCall<{ apiKey: string }>(baseUrl, adminKey, "IssueApiKey", {
    accountId: consumer.account.id,
    name: "test",
  });
  const owner = await adminCall<Account>(baseUrl, adminKey, "CreateAccount", {
    name: "mac-owner",
    tier: "ACCOUNT_TIER_CONSUMER",
  });
  const { token } = await adminCall<{ token: string }>(baseUrl, adminKey, "IssueProviderToken", {
    accountId: owner.account.id,
  });
  return { accountId: consumer.account.id, apiKey, providerToken: token };
}

/** Runs `coordinator <args>` to completion (asynchronously: never block the loop a server may share). */
export function runCoordinatorCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}
