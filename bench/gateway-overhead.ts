/**
 * Gateway overhead: the real coordinator (HTTP pipeline, ledger reserve/settle on PostgreSQL, scheduler,
 * gRPC to instant simulated Macs) vs a direct baseline on the same machine: a minimal node:http server in the
 * same process replaying byte for byte the response the gateway produced (JSON, or the same SSE events). Both
 * are driven by one load generator in a child process (bench/gateway-load.ts), non-streaming and streaming, at
 * concurrency 1, 32 and 128; ratios and added latency are computed per cell.
 *
 * Why a child process for the client: on 2 cores an in-process client shares the coordinator's event loop, so
 * its parsing and timers would be billed as gateway overhead and its latency samples would include waiting
 * behind coordinator callbacks. The instant simulated Macs run in a second child (bench/instant-macs.ts): in
 * production providers are remote machines, so their gRPC client and protobuf work is not gateway overhead.
 * They still share the machine's 2 cores, like the client and PostgreSQL, so the comparison stays strict.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { markdownTable, ratio, round, target, type BenchResult } from "./bench-result.js";
import { startBenchCoordinator } from "./bench-coordinator.js";
import type { LoadPlan, LoadRow } from "./gateway-load.js";
import type { InstantMacsPlan } from "./instant-macs.js";
import { spawnBenchChild, type BenchChild } from "./spawn-child.js";

/** Options of {@link runGatewayBench}. */
export interface GatewayBenchOptions {
  quick: boolean;
  env: NodeJS.ProcessEnv;
  concurrency?: number[];
  progress?: (line: string) => void;
}

const MODEL = "gpt-oss-20b";
const body = (stream: boolean) =>
  JSON.stringify({
    model: MODEL,
    messages: [{ role: "user", content: "Write one short sentence about benchmarks." }],
    max_tokens: 32,
    stream,
  });

/** Captures one real gateway response per mode, to be replayed by the direct server. */
async function capture(baseUrl: string, apiKey: string, stream: boolean): Promise<string> {
  const r = await fetch(`${baseUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
    body: body(stream),
  });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`gateway warm-up request failed: ${r.status} ${text.slice(0, 300)}`);
  return text;
}

/** The direct baseline: reads and parses the body like any server would, then replays the captured bytes. */
async function startDirectServer(json: string, sse: string): Promise<{ url: string; close(): Promise<void> }> {
  const events = sse
    .split("\n\n")
    .filter((e) => e.length > 0)
    .map((e) => `${e}\n\n`);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const parsed = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { stream?: boolean };
      if (parsed.stream) {
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
        for (const e of events) res.write(e);
        res.end();
      } else {
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(json) });
        res.end(json);
      }
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1/chat/completions`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Spawns the Macs' child process and resolves once every Mac has registered (rejects if it exits first). */
async function startInstantMacs(plan: InstantMacsPlan): Promise<BenchChild<unknown>> {
  let onReady!: () => void;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const child = spawnBenchChild<unknown>("./instant-macs.ts", [JSON.stringify(plan)], {
    onStderr: (l) => l === "ready" && onReady(),
  });
  await Promise.race([
    ready,
    child.result.then(() => Promise.reject(new Error("instant Macs exited before registering"))),
  ]);
  return child;
}

/** Runs the comparison; targets: non-streaming throughput ≥ 25 % of direct, added p99 < 5 ms at c=32. */
export async function runGatewayBench(o: GatewayBenchOptions): Promise<BenchResult> {
  const concurrency = o.concurrency ?? [1, 32, 128];
  const durationMs = o.quick ? 400 : 4_000;
  const warmupMs = o.quick ? 100 : 500;
  const macCount = 8;
  const bc = await startBenchCoordinator({ env: o.env, accounts: 32 });
  let macs: BenchChild<unknown> | undefined;
  let direct: Awaited<ReturnType<typeof startDirectServer>> | undefined;
  try {
    macs = await startInstantMacs({
      coordinator: bc.grpcAddress,
      token: bc.providerToken,
      count: macCount,
      model: MODEL,
      maxConcurrency: 64,
    });
    const json = await capture(bc.baseUrl, bc.apiKeys[0]!, false);
    const sse = await capture(bc.baseUrl, bc.apiKeys[0]!, true);
    direct = await startDirectServer(json, sse);
    const plan: LoadPlan = {
      targets: [
        { label: "direct", url: direct.url, apiKeys: ["direct"] },
        { label: "gateway", url: `${bc.baseUrl}/v1/chat/completions`, apiKeys: bc.apiKeys },
      ],
      concurrency,
      modes: ["json", "stream"],
      bodies: { json: body(false), stream: body(true) },
      durationMs,
      warmupMs,
      globalWarmupMs: o.quick ? 200 : 1_000,
    };
    o.progress?.(
      `gateway: ${macCount} instant Macs, ${bc.apiKeys.length} service accounts, ${durationMs} ms per cell, Macs and load generator in child processes`,
    );
    const rows = await spawnBenchChild<LoadRow[]>("./gateway-load.ts", [JSON.stringify(plan)], {
      onStderr: (l) => o.progress?.(`gateway: ${l}`),
    }).result;
    return report(rows, concurrency, {
      durationMs,
      macCount,
      accounts: bc.apiKeys.length,
      server: bc.server,
      responseBytes: { json: json.length, sse: sse.length },
    });
  } finally {
    await direct?.close();
    if (macs) {
      macs.child.stdin!.end();
      await macs.result.catch(() => undefined);
    }
    await bc.close();
  }
}

function report(rows: LoadRow[], concurrency: number[], params: Record<string, unknown>): BenchResult {
  const get = (t: LoadRow["target"], mode: LoadRow["mode"], c: number) =>
    rows.find((r) => r.target === t && r.mode === mode && r.concurrency === c)!;
  const f = (v: number) => round(v);
  const table = markdownTable(
    [
      "mode",
      "conc.",
      "direct req/s",
      "gateway req/s",
      "gateway ÷ direct",
      "direct p50 / p99 ms",
      "gateway p50 / p99 ms",
      "added p50 / p99 ms",
      "TTFB direct / gateway p50 ms",
      "TTFB gateway p99 ms",
      "errors (gw)",
    ],
    rows
      .filter((r) => r.target === "gateway")
      .map((g) => {
        const d = get("direct", g.mode, g.concurrency);
        return [
          g.mode === "json" ? "non-streaming" : "streaming",
          g.concurrency,
          f(d.requestsPerS),
          f(g.requestsPerS),
          ratio(g.requestsPerS, d.requestsPerS),
          `${f(d.latencyMs.p50)} / ${f(d.latencyMs.p99)}`,
          `${f(g.latencyMs.p50)} / ${f(g.latencyMs.p99)}`,
          `${f(g.latencyMs.p50 - d.latencyMs.p50)} / ${f(g.latencyMs.p99 - d.latencyMs.p99)}`,
          g.mode === "stream" ? `${f(d.ttfbMs.p50)} / ${f(g.ttfbMs.p50)}` : "",
          g.mode === "stream" ? f(g.ttfbMs.p99) : "",
          g.errors + d.errors > 0
            ? `${g.errors}${g.firstError ? ` (${g.firstError.slice(0, 60).replace(/\|/g, "/")})` : ""}`
            : "0",
        ];
      }),
  );
  const targets = concurrency.map((c) =>
    target(
      `non-streaming throughput gateway ÷ direct at concurrency ${c}`,
      get("gateway", "json", c).requestsPerS / get("direct", "json", c).requestsPerS,
      ">=",
      0.25,
      "×",
    ),
  );
  if (concurrency.includes(32)) {
    for (const mode of ["json", "stream"] as const) {
      const added = get("gateway", mode, 32).latencyMs.p99 - get("direct", mode, 32).latencyMs.p99;
      targets.push(
        target(
          `added p99 latency (${mode === "json" ? "non-streaming" : "streaming"}) at concurrency 32`,
          added,
          "<",
          5,
          "ms",
        ),
      );
    }
  }
  const errors = rows.reduce((a, r) => a + r.errors, 0);
  targets.push(target("failed requests (either side)", errors, "<", 1, "requests"));
  const note = `Closed-loop keep-alive clients; added latency = gateway percentile − direct percentile. ${JSON.stringify(params)}`;
  return {
    name: "gateway",
    title: "Gateway overhead vs direct HTTP",
    markdown: `${table}\n\n${note}`,
    targets,
    data: { ...params, rows },
  };
}
