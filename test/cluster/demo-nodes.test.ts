/**
 * `coordinator demo --nodes 3` (issue 17): three coordinators in one process on one database and a throwaway
 * nats-server, the simulated Macs spread over them. Every node hears the other two, mirrors the Macs it does not
 * hold, and a streamed completion works through each node's HTTP port. Needs `nats-server` on the PATH (the
 * machine's Debian package).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { freePorts } from "../support/coordinator-process.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";

const bin = fileURLToPath(new URL("../../bin/coordinator.js", import.meta.url));

interface Health {
  providers_connected: number;
  cluster: { peers: string[]; providers_mirrored: number; nats_connected: boolean };
}

describe("coordinator demo --nodes 3", function () {
  this.timeout(120_000);
  let db: TestDatabase;
  let child: ReturnType<typeof spawn> | undefined;
  let out = "";

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    await db?.close();
  });

  it("serves a streamed completion through every node, each seeing the whole fleet", async () => {
    // Three consecutive free ports for HTTP and three for gRPC (the demo counts up from the first).
    const [http, grpc] = await consecutivePorts();
    child = spawn(
      process.execPath,
      [bin, "demo", "--nodes", "3", "--macs", "6", "--database-url", db.url, "--host", "127.0.0.1"],
      {
        env: {
          ...process.env,
          HTTP_PORT: String(http),
          GRPC_PORT: String(grpc),
          LOG_LEVEL: "warn",
          DEV_API_KEY: "",
          OTEL_EXPORTER_OTLP_ENDPOINT: "",
          DD_AGENT_HOST: "",
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    const until = Date.now() + 90_000;
    while (!/API key\s+:\s+(sk-\S+)/.test(out)) {
      if (child.exitCode !== null) assert.fail(`demo exited:\n${out}`);
      if (Date.now() > until) assert.fail(`no banner:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const apiKey = /API key\s+:\s+(sk-\S+)/.exec(out)![1]!;
    assert.match(out, /Cluster\s+: 3 coordinators/);
    const ports = [http, http + 1, http + 2];
    for (const p of ports) {
      await waitFor(async () => {
        const h = (await (await fetch(`http://127.0.0.1:${p}/health`)).json()) as Health;
        return h.cluster.peers.length === 2 && h.providers_connected + h.cluster.providers_mirrored === 6;
      }, `node on ${p} hears both peers and sees all 6 Macs`);
      // As a consumer would: the SDK retries a 429 after its Retry-After. One is possible here, since the previous
      // node's request may still show as running in this node's mirror for up to CLUSTER_SNAPSHOT_MS.
      const client = new OpenAI({ baseURL: `http://127.0.0.1:${p}/v1`, apiKey, maxRetries: 3 });
      const stream = await client.chat.completions
        .create({
          model: "gpt-oss-20b",
          messages: [{ role: "user", content: "hello cluster" }],
          max_tokens: 16,
          stream: true,
        })
        .catch((e: unknown) => {
          throw new Error(`node on ${p}: ${String(e)}\n${out}`);
        });
      let text = "";
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
      assert.ok(text.length > 0, `node on ${p} streamed content`);
    }
  });
});

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) assert.fail(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Two runs of three consecutive ports that were free a moment ago. */
async function consecutivePorts(): Promise<[number, number]> {
  for (let tries = 0; tries < 20; tries++) {
    const [a] = await freePorts(1);
    const base = a! - (a! % 10);
    if (base + 15 > 65_000) continue;
    const { createServer } = await import("node:net");
    const probe = (port: number) =>
      new Promise<boolean>((resolve) => {
        const s = createServer();
        s.once("error", () => resolve(false));
        s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
      });
    const wanted = [0, 1, 2, 5, 6, 7].map((d) => base + d);
    if ((await Promise.all(wanted.map(probe))).every(Boolean)) return [base, base + 5];
  }
  throw new Error("no run of free ports found");
}
