/**
 * Cluster scale-out (issue 17): coordinators sharing one PostgreSQL and a NATS server, measured against the
 * single coordinator they replace, side by side in one run.
 *
 * - **Forwarding overhead.** A 3-node cluster where node A owns every Mac of one model (qwen3-8b), and those Macs
 *   decode at the simulated chip's pace (streams last seconds, as real ones do; instant Macs would make every
 *   request pure CPU work and first token a measure of queueing on a saturated machine). 256 concurrent streams
 *   rotate over the 3 nodes' HTTP ports in one cell: those entering at A dispatch locally, those entering at B or
 *   C are forwarded over NATS to A and their events relayed back. Both kinds share every moment of the cell, so
 *   what separates them is the path, not the drift between two cells. Reported: first-token p50/p99 of each kind
 *   (the rounds' samples pooled) and the difference, inter-chunk gaps too.
 * - **Throughput.** One coordinator with a fleet of instant Macs (gpt-oss-20b) vs the 3-node cluster with a fleet
 *   of the same size spread over its nodes (Mac i on node i mod 3), same total concurrency, the load spread
 *   round-robin over the 3 nodes' HTTP ports. Each node prefers its own Macs on a near-tie (choose-in-tier.ts),
 *   so most requests stay where they entered; the report counts the forwards.
 * - **Three lone nodes** (a reference, no target): three coordinators that are *not* a cluster, each with Macs of
 *   its own (LONE_MACS_PER_NODE), the load round-robin over their ports. What they lose against one node is the
 *   cost of splitting this machine's two cores among three coordinator processes, with no NATS and no forwarding;
 *   what the cluster loses against them is the cost of being a cluster.
 *
 * Process layout on a 2-core machine: each cluster node is its own process, as in a deployment (nodes on one
 * event loop would serialise what a cluster runs in parallel, and forwarding would never leave the process).
 * The bench process hosts node A, the single coordinator and the first lone node (never loaded at the same time:
 * cells alternate); nodes B and C and the other two lone nodes are children (bench/cluster-node.ts). The simulated
 * Macs (all fleets, one child) and the load generator (one child) stay out of every coordinator's event loop, as in
 * the gateway benchmark; NATS is a private nats-server (from the PATH) started for the run and stopped after it.
 * Everything shares the 2 cores.
 */
import { randomBytes } from "node:crypto";
import { loadavg } from "node:os";
import { startNatsSidecar, type NatsSidecar } from "../src/cli/nats-sidecar.js";
import type { Config } from "../src/config/config.js";
import { round, type BenchResult } from "./bench-result.js";
import { startBenchCoordinator, type BenchCoordinator } from "./bench-coordinator.js";
import { natsPid, startNodeChild, stopChild, untilFleetSeen } from "./cluster-processes.js";
import { forwardOutcomes } from "./forward-counters.js";
import { clusterReport } from "./cluster-report.js";
import {
  ACCOUNTS,
  CONCURRENCY,
  FORWARD_COALESCE_MS,
  FORWARD_MAC_CONCURRENCY,
  FORWARD_MACS,
  FORWARD_MAX_TOKENS,
  FORWARD_MIN_CELL_MS,
  FORWARD_MODEL,
  LONE_MACS_PER_NODE,
  MAC_CONCURRENCY,
  MACS,
  THROUGHPUT_MAX_TOKENS,
  THROUGHPUT_MODEL,
} from "./cluster-setup.js";
import type { LoadPlan, LoadRow, LoadTarget } from "./gateway-load.js";
import type { InstantMacsPlan } from "./instant-macs.js";
import { spawnBenchChild, type BenchChild } from "./spawn-child.js";

/** Options of {@link runClusterBench}. */
export interface ClusterBenchOptions {
  quick: boolean;
  env: NodeJS.ProcessEnv;
  progress?: (line: string) => void;
}

const body = (model: string, stream: boolean, maxTokens: number) =>
  JSON.stringify({
    model,
    messages: [{ role: "user", content: "Write one short sentence about benchmarks." }],
    max_tokens: maxTokens,
    stream,
  });
const bodies = (model: string, maxTokens: number) => ({
  json: body(model, false, maxTokens),
  stream: body(model, true, maxTokens),
});

/** Runs both comparisons; targets: added first-token p99 ≤ 5 ms forwarded, 3-node throughput ≥ 0.9 × one node. */
export async function runClusterBench(o: ClusterBenchOptions): Promise<BenchResult> {
  const durationMs = o.quick ? 400 : 4_000;
  const forwardDurationMs = Math.max(durationMs, FORWARD_MIN_CELL_MS);
  const rounds = o.quick ? 1 : 3;
  const warmupMs = o.quick ? 100 : 500;
  const prefix = `bench${randomBytes(4).toString("hex")}`;
  const t0 = performance.now();
  const loadBefore = loadavg()[0]!;
  let nats: NatsSidecar | undefined;
  let single: BenchCoordinator | undefined;
  let a: BenchCoordinator | undefined;
  let lone: BenchCoordinator | undefined;
  const nodes: Awaited<ReturnType<typeof startNodeChild>>[] = [];
  const loneNodes: Awaited<ReturnType<typeof startNodeChild>>[] = [];
  let macs: BenchChild<unknown> | undefined;
  try {
    nats = await startNatsSidecar();
    const clusterConfig = (nodeId: string): Partial<Config> => ({
      cluster: nats!.url,
      clusterPrefix: prefix,
      nodeId,
      // Read at the end: how many forwards the owners refused (a stale mirror) or left unanswered.
      metricsPrometheus: true,
      // As a deployment of 3 would: each node enforces a third of every rate limit.
      replicas: 3,
    });
    single = await startBenchCoordinator({ env: o.env, accounts: ACCOUNTS });
    a = await startBenchCoordinator({ env: o.env, accounts: ACCOUNTS, config: clusterConfig("a") });
    for (const id of ["b", "c"])
      nodes.push(await startNodeChild({ databaseUrl: a.databaseUrl, config: clusterConfig(id) }));
    const clusterHttp = [a.baseUrl, ...nodes.map((n) => n.baseUrl)];
    const clusterGrpc = [a.grpcAddress, ...nodes.map((n) => n.grpcAddress)];
    // The lone nodes share one database (the first one's accounts and provider token) and no NATS: each knows only
    // its own Macs.
    lone = await startBenchCoordinator({ env: o.env, accounts: ACCOUNTS, config: { metricsPrometheus: true } });
    for (let i = 0; i < 2; i++)
      loneNodes.push(await startNodeChild({ databaseUrl: lone.databaseUrl, config: { metricsPrometheus: true } }));
    const loneHttp = [lone.baseUrl, ...loneNodes.map((n) => n.baseUrl)];
    const loneGrpc = [lone.grpcAddress, ...loneNodes.map((n) => n.grpcAddress)];
    const macPlan: InstantMacsPlan = {
      coordinator: single.grpcAddress,
      token: single.providerToken,
      count: MACS,
      model: THROUGHPUT_MODEL,
      maxConcurrency: MAC_CONCURRENCY,
      serialPrefix: "BENCH-CL-ONE",
      more: [
        {
          coordinator: a.grpcAddress,
          token: a.providerToken,
          count: FORWARD_MACS,
          model: FORWARD_MODEL,
          maxConcurrency: FORWARD_MAC_CONCURRENCY,
          serialPrefix: "BENCH-CL-FWD",
          paced: true,
          coalesceMs: FORWARD_COALESCE_MS,
        },
        {
          coordinator: a.grpcAddress,
          coordinators: clusterGrpc,
          token: a.providerToken,
          count: MACS,
          model: THROUGHPUT_MODEL,
          maxConcurrency: MAC_CONCURRENCY,
          serialPrefix: "BENCH-CL-SPREAD",
        },
        {
          coordinator: lone.grpcAddress,
          coordinators: loneGrpc,
          token: lone.providerToken,
          count: 3 * LONE_MACS_PER_NODE,
          model: THROUGHPUT_MODEL,
          maxConcurrency: MAC_CONCURRENCY,
          serialPrefix: "BENCH-CL-LONE",
        },
      ],
    };
    let onReady!: () => void;
    const ready = new Promise<void>((resolve) => (onReady = resolve));
    macs = spawnBenchChild<unknown>("./instant-macs.ts", [JSON.stringify(macPlan)], {
      onStderr: (l) => l === "ready" && onReady(),
    });
    await Promise.race([
      ready,
      macs.result.then(() => Promise.reject(new Error("instant Macs exited before registering"))),
    ]);
    await untilFleetSeen([single.baseUrl], MACS);
    await untilFleetSeen(clusterHttp, MACS + FORWARD_MACS);
    await untilFleetSeen(loneHttp, 3 * LONE_MACS_PER_NODE, true);
    const nats$ = natsPid(nats.url);
    o.progress?.(`cluster: set up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const chat = (base: string) => `${base}/v1/chat/completions`;
    const targets: LoadTarget[] = [
      {
        // One cell, the requests rotated over A (local), B and C (forwarded): both kinds share every moment of
        // the run, so what separates them is the path, not the drift of a noisy machine between two cells.
        label: "forwarding",
        url: clusterHttp.map(chat),
        urlGroups: ["local", "forwarded", "forwarded"],
        durationMs: forwardDurationMs,
        modes: ["stream"],
        apiKeys: a.apiKeys,
        bodies: bodies(FORWARD_MODEL, FORWARD_MAX_TOKENS),
      },
      {
        label: "one node",
        url: chat(single.baseUrl),
        apiKeys: single.apiKeys,
        bodies: bodies(THROUGHPUT_MODEL, THROUGHPUT_MAX_TOKENS),
      },
      {
        label: "3 nodes",
        url: clusterHttp.map(chat),
        forwardCounters: clusterHttp,
        apiKeys: a.apiKeys,
        bodies: bodies(THROUGHPUT_MODEL, THROUGHPUT_MAX_TOKENS),
      },
      {
        label: "3 lone nodes",
        url: loneHttp.map(chat),
        apiKeys: lone.apiKeys,
        bodies: bodies(THROUGHPUT_MODEL, THROUGHPUT_MAX_TOKENS),
      },
    ];
    const plan: LoadPlan = {
      targets,
      concurrency: [CONCURRENCY],
      modes: ["stream", "json"],
      bodies: bodies(THROUGHPUT_MODEL, THROUGHPUT_MAX_TOKENS),
      durationMs,
      warmupMs,
      // The child nodes start cold, while the bench process's one node has the other cells' warm-up behind it:
      // with 1 s the first of three rounds was the 3-node cells' slowest in most runs (README, Benchmarks, Cluster).
      globalWarmupMs: o.quick ? 200 : 5_000,
      rounds,
      cpuPids: {
        "bench process (A, one node, lone A)": process.pid,
        B: nodes[0]!.child.child.pid!,
        C: nodes[1]!.child.child.pid!,
        "lone B": loneNodes[0]!.child.child.pid!,
        "lone C": loneNodes[1]!.child.child.pid!,
        macs: macs.child.pid!,
        ...(nats$ !== undefined ? { nats: nats$ } : {}),
      },
    };
    o.progress?.(
      `cluster: 3 nodes (A here, B and C in child processes) on NATS ${nats.url} prefix ${prefix}; ${MACS} instant Macs per fleet, ${CONCURRENCY} concurrent requests, ${durationMs} ms per cell`,
    );
    const rows = await spawnBenchChild<LoadRow[]>("./gateway-load.ts", [JSON.stringify(plan)], {
      onStderr: (l) => o.progress?.(`cluster: ${l}`),
    }).result;
    const forwards = await Promise.all(clusterHttp.map(forwardOutcomes));
    return clusterReport(rows, {
      durationMs,
      forwardDurationMs,
      rounds,
      forwards: Object.fromEntries(["A", "B", "C"].map((n, i) => [n, forwards[i]])),
      macs: MACS,
      macConcurrency: MAC_CONCURRENCY,
      loneMacsPerNode: LONE_MACS_PER_NODE,
      accounts: ACCOUNTS,
      server: a.server,
      loadAverage1m: { before: round(loadBefore), after: round(loadavg()[0]!) },
    });
  } finally {
    await stopChild(macs);
    await Promise.all([...nodes, ...loneNodes].map((n) => stopChild(n.child)));
    await lone?.close();
    await a?.close();
    await single?.close();
    await nats?.stop();
  }
}
