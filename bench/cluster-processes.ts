/**
 * The processes of the cluster benchmark (cluster-scale-out.ts) and what it reads from them: coordinator nodes in
 * child processes, whether every node sees its fleet, the forward counters, and the private nats-server's pid.
 */
import { readdirSync, readFileSync } from "node:fs";
import type { ClusterNodePlan } from "./cluster-node.js";
import { FLEET_VIEW_TIMEOUT_MS } from "./cluster-setup.js";
import { spawnBenchChild, type BenchChild } from "./spawn-child.js";

/** The private nats-server's pid (the sidecar does not expose it), for the CPU accounting; undefined if not found. */
export function natsPid(url: string): number | undefined {
  const port = new URL(url).port;
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
      if (argv[0]?.endsWith("nats-server") && argv[argv.indexOf("-p") + 1] === port) return Number(d);
    } catch {
      // The process ended while we looked.
    }
  }
  return undefined;
}

/** A coordinator in a child process; resolves once it listens. */
export async function startNodeChild(
  plan: ClusterNodePlan,
): Promise<{ child: BenchChild<unknown>; baseUrl: string; grpcAddress: string }> {
  let onReady!: (ports: [number, number]) => void;
  const ready = new Promise<[number, number]>((resolve) => (onReady = resolve));
  const child = spawnBenchChild<unknown>("./cluster-node.ts", [JSON.stringify(plan)], {
    onStderr: (l) => {
      const m = /^ready (\d+) (\d+)$/.exec(l);
      if (m) onReady([Number(m[1]), Number(m[2])]);
    },
  });
  const [http, grpc] = await Promise.race([
    ready,
    child.result.then(() => Promise.reject(new Error("cluster node exited before listening"))),
  ]);
  return { child, baseUrl: `http://127.0.0.1:${http}`, grpcAddress: `127.0.0.1:${grpc}` };
}

export async function stopChild(c: BenchChild<unknown> | undefined): Promise<void> {
  if (!c) return;
  c.child.stdin!.end();
  await c.result.catch(() => undefined);
}

/**
 * Polls every node's /health until it routes to `expected` Macs (its own plus mirrors), or with `among`, until the
 * nodes' own Macs add up to `expected` (nodes that are not a cluster).
 */
export async function untilFleetSeen(baseUrls: readonly string[], expected: number, among = false): Promise<void> {
  const until = Date.now() + FLEET_VIEW_TIMEOUT_MS;
  for (;;) {
    const seen = await Promise.all(
      baseUrls.map(async (u) => {
        const h = (await (await fetch(`${u}/health`)).json()) as {
          providers_connected: number;
          cluster?: { providers_mirrored: number };
        };
        return h.providers_connected + (h.cluster?.providers_mirrored ?? 0);
      }),
    );
    if (among ? seen.reduce((t, n) => t + n, 0) === expected : seen.every((n) => n === expected)) return;
    if (Date.now() > until)
      throw new Error(`nodes see ${seen.join("/")} Macs of ${expected} after ${FLEET_VIEW_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
