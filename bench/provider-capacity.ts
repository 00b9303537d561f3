/**
 * Provider capacity of one coordinator process: this process runs the real coordinator (gRPC provider edge,
 * registry, heartbeat eviction sweep, server keepalive pings) and child processes (bench/capacity-streams.ts)
 * hold lightweight provider streams against it, each on its own connection, heartbeating every few seconds.
 * Side by side in one run: the same process with zero streams (baseline) vs with N streams: memory per stream
 * (heap and RSS delta ÷ streams, after a full GC) and event-loop delay p99 (perf_hooks.monitorEventLoopDelay).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { markdownTable, ratio, round, target, type BenchResult } from "./bench-result.js";
import { startBenchCoordinator } from "./bench-coordinator.js";
import { spawnBenchChild, type BenchChild } from "./spawn-child.js";

/** Options of {@link runCapacityBench}. */
export interface CapacityBenchOptions {
  quick: boolean;
  env?: NodeJS.ProcessEnv;
  /** Streams to hold (default 10,000; quick 200). */
  streams?: number;
  /** Streams per child process (default 2,000). */
  perChild?: number;
  heartbeatMs?: number;
  progress?: (line: string) => void;
}

interface ChildResult {
  opened: number;
  registered: number;
  ended: number;
  retries: number;
  retryDetails?: Record<string, number>;
  heartbeats: number;
  endDetails: Record<string, number>;
}

/** A full GC if the flag can be enabled at run time (it can in Node 20), so memory deltas are live data. */
function fullGc(): void {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as (() => void) | undefined;
  gc?.();
  gc?.();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const RESOLUTION_MS = 10;

/**
 * Event-loop lag from a histogram: Node records the whole interval of its sampling timer, so the lag is the
 * recorded value minus the timer's resolution.
 */
function lagOf(h: ReturnType<typeof monitorEventLoopDelay>): { p50Ms: number; p99Ms: number; maxMs: number } {
  const ms = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS);
  return { p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), maxMs: ms(h.max) };
}

/** Event-loop lag p50/p99/max (ms) over `ms` of wall time. */
async function measureLag(ms: number): Promise<{ p50Ms: number; p99Ms: number; maxMs: number }> {
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  h.enable();
  await sleep(ms);
  h.disable();
  return lagOf(h);
}

function memory() {
  fullGc();
  const m = process.memoryUsage();
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, externalBytes: m.external + m.arrayBuffers };
}

/** Runs the benchmark; targets: all streams held, event-loop lag p99 < 20 ms while holding them. */
export async function runCapacityBench(o: CapacityBenchOptions): Promise<BenchResult> {
  const streams = o.streams ?? (o.quick ? 200 : 10_000);
  const perChild = Math.min(o.perChild ?? 2_000, streams);
  const heartbeatMs = o.heartbeatMs ?? 5_000;
  const measureMs = o.quick ? 1_500 : 15_000;
  const log = o.progress ?? (() => {});
  const bc = await startBenchCoordinator({
    env: o.env ?? process.env,
    accounts: 0,
    // The warm-pool planner runs at its production tick: its pass over the fleet is part of what the loop carries.
    // Every stream comes from this machine's one address: the per-address bound (256 by default) is lifted.
    config: {
      heartbeatIntervalMs: heartbeatMs,
      heartbeatTimeoutMs: heartbeatMs * 4,
      warmPoolIntervalMs: 5_000,
      providerMaxConnectionsPerAddress: streams,
    },
  });
  const children: BenchChild<ChildResult>[] = [];
  try {
    await sleep(500);
    const baseMem = memory();
    const baseLag = await measureLag(measureMs);
    log(
      `capacity: baseline (0 streams) lag p99 ${round(baseLag.p99Ms)} ms, heap ${round(baseMem.heapUsedBytes / 2 ** 20)} MiB; opening ${streams} streams from ${Math.ceil(streams / perChild)} child processes`,
    );

    const rampLag = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    rampLag.enable();
    const rampStart = performance.now();
    for (let i = 0, left = streams; left > 0; i++, left -= perChild) {
      const count = Math.min(perChild, left);
      const args = {
        address: bc.grpcAddress,
        token: bc.providerToken,
        count,
        ratePerS: o.quick ? 1_000 : 500,
        heartbeatMs,
        serialPrefix: `CAP${i}`,
        model: "gpt-oss-20b",
      };
      children.push(
        spawnBenchChild<ChildResult>("./capacity-streams.ts", [JSON.stringify(args)], {
          onStderr: (l) => log(`capacity: ${l}`),
          nodeArgs: ["--max-old-space-size=4096"],
        }),
      );
    }
    // Wait until every stream is registered, or the count stops growing for 20 s.
    let last = -1;
    let stableSince = performance.now();
    const registry = bc.coordinator.registry;
    while (registry.size < streams) {
      if (registry.size !== last) {
        last = registry.size;
        stableSince = performance.now();
      } else if (performance.now() - stableSince > 20_000) break;
      await sleep(250);
    }
    const rampS = (performance.now() - rampStart) / 1000;
    rampLag.disable();
    const ramp = lagOf(rampLag);
    const held = registry.size;
    log(
      `capacity: ${held} providers registered after ${rampS.toFixed(1)} s; measuring ${measureMs} ms with heartbeats every ${heartbeatMs} ms`,
    );
    await sleep(Math.min(heartbeatMs, 5_000)); // one full heartbeat round before measuring
    const loadLag = await measureLag(measureMs);
    const loadMem = memory();
    const stillHeld = registry.size;
    for (const c of children) c.child.stdin!.end();
    const childResults = await Promise.all(children.map((c) => c.result));
    const perStream = (a: number, b: number) => (stillHeld > 0 ? (a - b) / stillHeld : NaN);
    const heapPer = perStream(loadMem.heapUsedBytes, baseMem.heapUsedBytes);
    const rssPer = perStream(loadMem.rssBytes, baseMem.rssBytes);
    const extPer = perStream(loadMem.externalBytes, baseMem.externalBytes);
    const table = markdownTable(
      [
        "state",
        "provider streams",
        "event-loop lag p50 / p99 / max ms",
        "heap used MiB",
        "RSS MiB",
        "external+buffers MiB",
      ],
      [
        [
          "baseline",
          0,
          `${round(baseLag.p50Ms)} / ${round(baseLag.p99Ms)} / ${round(baseLag.maxMs)}`,
          round(baseMem.heapUsedBytes / 2 ** 20),
          round(baseMem.rssBytes / 2 ** 20),
          round(baseMem.externalBytes / 2 ** 20),
        ],
        ["ramp (connecting)", held, `${round(ramp.p50Ms)} / ${round(ramp.p99Ms)} / ${round(ramp.maxMs)}`, "", "", ""],
        [
          "holding",
          stillHeld,
          `${round(loadLag.p50Ms)} / ${round(loadLag.p99Ms)} / ${round(loadLag.maxMs)}`,
          round(loadMem.heapUsedBytes / 2 ** 20),
          round(loadMem.rssBytes / 2 ** 20),
          round(loadMem.externalBytes / 2 ** 20),
        ],
      ],
    );
    const heartbeats = childResults.reduce((a, c) => a + c.heartbeats, 0);
    const note = [
      `Per provider stream: heap ${round(heapPer / 1024)} KiB, RSS ${round(rssPer / 1024)} KiB, external ${round(extPer / 1024)} KiB.`,
      `Lag p99 holding ÷ baseline: ${ratio(loadLag.p99Ms, baseLag.p99Ms)}. Ramp ${rampS.toFixed(1)} s (${round(held / rampS)} registrations/s).`,
      `${children.length} child processes, ${heartbeats} heartbeats sent in total (every ${heartbeatMs} ms per stream), server keepalive every 5 s per connection.`,
      `Children: ${JSON.stringify(childResults.map((c) => ({ opened: c.opened, registered: c.registered, ended: c.ended, connectRetries: c.retries, ...(c.retryDetails && Object.keys(c.retryDetails).length ? { retryDetails: c.retryDetails } : {}), ...(Object.keys(c.endDetails).length ? { endDetails: c.endDetails } : {}) })))}`,
    ].join("\n");
    const targets = [
      target(`provider streams held by one process (of ${streams})`, stillHeld, ">=", streams, "streams"),
      target(`event-loop lag p99 holding ${stillHeld} streams`, loadLag.p99Ms, "<", 20, "ms"),
    ];
    return {
      name: "capacity",
      title: "Provider capacity of one coordinator process",
      markdown: `${table}\n\n${note}`,
      targets,
      data: {
        streams,
        held: stillHeld,
        rampLag: ramp,
        perChild,
        heartbeatMs,
        measureMs,
        rampS,
        baseline: { ...baseMem, lag: baseLag },
        holding: { ...loadMem, lag: loadLag },
        bytesPerStream: { heap: heapPer, rss: rssPer, external: extPer },
        children: childResults,
      },
    };
  } finally {
    for (const c of children) {
      c.child.stdin?.end();
      c.result.catch(() => {});
    }
    await Promise.all(
      children.map((c) => (c.child.exitCode === null ? new Promise((r) => c.child.once("exit", r)) : undefined)),
    );
    await bc.close();
  }
}
