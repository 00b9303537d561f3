/**
 * The gateway benchmark's load generator, run as a child process so its own work (HTTP parsing, timers,
 * bookkeeping) does not share an event loop with the coordinator it measures. Reads a {@link LoadPlan} as JSON
 * from argv[2], runs every cell (mode × concurrency × target, the two targets back to back per cell so drift on
 * a noisy machine hits both alike), and prints one JSON line of {@link LoadRow}s on stdout.
 *
 * Client (load-client.ts): closed-loop workers, each with its own keep-alive agent (one socket per worker and URL), kept for the
 * whole run: a worker rotating over several URLs reuses its connections instead of opening new ones mid-cell
 * (a shared agent's pool per URL followed the load's fluctuation with new connections, and a new connection on
 * this loaded 2-core machine took 1-3 s to be served: the 3-node cells' p99 was those connects).
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { acceptedForwards } from "./forward-counters.js";
import { ClientPool, once, primeConnections } from "./load-client.js";

/** One endpoint under test. */
export interface LoadTarget {
  /** "direct" / "gateway" in the gateway benchmark; the cluster benchmark names its own. */
  label: string;
  /** One URL, or several rotated per request (load spread round-robin over several coordinators). */
  url: string | string[];
  /** API keys rotated per request (the gateway limits per account; the direct server ignores them). */
  apiKeys: string[];
  /** Request bodies for this target, instead of the plan's (e.g. another model). */
  bodies?: Record<"json" | "stream", string>;
  /** Measured window of this target's cells instead of the plan's (e.g. requests that last seconds). */
  durationMs?: number;
  /** The plan's modes this target runs in (default: all of them). */
  modes?: ("json" | "stream")[];
  /**
   * With several URLs: a group name per URL (same order). Requests are then also reported per group, with their
   * raw samples, so two kinds of entry measured in one cell (e.g. local and forwarded) share every moment of it.
   */
  urlGroups?: string[];
  /**
   * Base URLs of cluster nodes whose accepted forwards (`cluster.forwards`, from their Prometheus endpoints) are
   * counted over each cell's measured window: how many of the cell's requests ran on a Mac another node owns.
   */
  forwardCounters?: string[] | undefined;
}

/** One group of a cell's requests (see {@link LoadTarget.urlGroups}), with the raw samples for pooling. */
export interface LoadGroup {
  ok: number;
  latencyMs: number[];
  firstTokenMs: number[];
  interChunkMs: number[];
}

/** What the child runs. */
export interface LoadPlan {
  targets: LoadTarget[];
  concurrency: number[];
  modes: ("json" | "stream")[];
  /** Request body per mode (the JSON the client posts). */
  bodies: Record<"json" | "stream", string>;
  durationMs: number;
  warmupMs: number;
  /** Unrecorded load on every target and mode before the first cell (JIT, connection pools, credit leases). */
  globalWarmupMs: number;
  /** Processes whose CPU time is read (Linux /proc) over each cell's measured window, by name. */
  cpuPids?: Record<string, number>;
  /** Every cell is run this many times, round after round (drift on a shared machine spreads over all). */
  rounds?: number;
}

/** One measured cell. */
export interface LoadRow {
  target: LoadTarget["label"];
  mode: "json" | "stream";
  /** Which round of the plan (0-based). */
  round?: number;
  concurrency: number;
  ok: number;
  errors: number;
  /** First error seen (status and body start), for the report. */
  firstError?: string;
  requestsPerS: number;
  latencyMs: { p50: number; p99: number };
  /** Time to the first response body bytes (the first SSE event for streams). */
  ttfbMs: { p50: number; p99: number };
  /** Streams only: time to the first SSE event carrying generated content (the first token). */
  firstTokenMs?: { p50: number; p99: number };
  /** Streams only: gaps between successive reads after the first token, over every request. */
  interChunkMs?: { p50: number; p99: number };
  /** With `cpuPids`: CPU each process used over the measured window, as a percentage of one core. */
  cpuPercent?: Record<string, number>;
  /** With {@link LoadTarget.forwardCounters}: forwards to another node accepted over the measured window. */
  forwardsAccepted?: number;
  /** With {@link LoadTarget.urlGroups}: the successful requests per group. */
  groups?: Record<string, LoadGroup>;
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** User + system CPU ms of each process so far (the load generator itself as "load"); NaN if unreadable. */
function cpuMsOf(pids: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) {
    try {
      // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out[name] = ((Number(f[11]) + Number(f[12])) * 1000) / USER_HZ;
    } catch {
      out[name] = Number.NaN;
    }
  }
  const self = process.cpuUsage();
  out.load = (self.user + self.system) / 1000;
  return out;
}

const pct = (s: Float64Array, p: number) =>
  s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;

/** Runs one closed-loop cell against one target; `clients` carries connections over from earlier cells. */
export async function runLoadCell(
  target: LoadTarget,
  mode: "json" | "stream",
  concurrency: number,
  body: string,
  durationMs: number,
  warmupMs: number,
  cpuPids?: Record<string, number>,
  clients?: ClientPool,
): Promise<LoadRow> {
  const pool = clients ?? new ClientPool();
  const lat: number[] = [];
  const ttfb: number[] = [];
  const firstToken: number[] = [];
  const gaps: number[] = [];
  const urls = typeof target.url === "string" ? [target.url] : target.url;
  let ok = 0;
  let errors = 0;
  let firstError: string | undefined;
  let n = 0;
  const groups: Record<string, LoadGroup> = {};
  for (const g of target.urlGroups ?? []) groups[g] ??= { ok: 0, latencyMs: [], firstTokenMs: [], interChunkMs: [] };
  const warmEnd = performance.now() + warmupMs;
  const end = warmEnd + durationMs;
  let cpuStart: { at: number; ms: Record<string, number> } | undefined;
  const sampler = cpuPids && setTimeout(() => (cpuStart = { at: performance.now(), ms: cpuMsOf(cpuPids) }), warmupMs);
  const forwardsAtStart =
    target.forwardCounters &&
    new Promise<number>((resolve) => setTimeout(() => resolve(acceptedForwards(target.forwardCounters!)), warmupMs));
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (performance.now() < end) {
        const i = n++;
        const group = target.urlGroups?.[i % urls.length];
        const r = await once(
          pool.agent(worker),
          target.apiKeys[i % target.apiKeys.length]!,
          body,
          mode === "stream",
          urls[i % urls.length]!,
        );
        if (performance.now() - r.totalMs < warmEnd) continue; // started during warm-up
        if (r.ok) {
          ok++;
          lat.push(r.totalMs);
          ttfb.push(r.ttfbMs);
          if (r.timer) {
            firstToken.push(r.timer.firstTokenMs);
            for (const g of r.timer.gaps) gaps.push(g);
          }
          if (group !== undefined) {
            const g = groups[group]!;
            g.ok++;
            g.latencyMs.push(r.totalMs);
            if (r.timer) {
              g.firstTokenMs.push(r.timer.firstTokenMs);
              g.interChunkMs.push(...r.timer.gaps);
            }
          }
        } else {
          errors++;
          firstError ??= r.error;
        }
      }
    }),
  );
  if (!clients) pool.destroy();
  clearTimeout(sampler);
  let cpuPercent: Record<string, number> | undefined;
  if (cpuPids && cpuStart) {
    const now = cpuMsOf(cpuPids);
    const wall = performance.now() - cpuStart.at;
    cpuPercent = Object.fromEntries(
      Object.entries(now).map(([k, v]) => [k, Math.round(((v - cpuStart!.ms[k]!) / wall) * 1000) / 10]),
    );
  }
  const l = Float64Array.from(lat).sort();
  const t = Float64Array.from(ttfb).sort();
  const row: LoadRow = {
    target: target.label,
    mode,
    concurrency,
    ok,
    errors,
    requestsPerS: (ok / durationMs) * 1000,
    latencyMs: { p50: pct(l, 50), p99: pct(l, 99) },
    ttfbMs: { p50: pct(t, 50), p99: pct(t, 99) },
  };
  if (mode === "stream") {
    const f = Float64Array.from(firstToken).sort();
    const g = Float64Array.from(gaps).sort();
    row.firstTokenMs = { p50: pct(f, 50), p99: pct(f, 99) };
    row.interChunkMs = { p50: pct(g, 50), p99: pct(g, 99) };
  }
  if (cpuPercent) row.cpuPercent = cpuPercent;
  if (forwardsAtStart) {
    const n = (await acceptedForwards(target.forwardCounters!)) - (await forwardsAtStart);
    if (Number.isFinite(n)) row.forwardsAccepted = n; // a node's /metrics unreadable: no figure rather than a wrong one
  }
  if (target.urlGroups) row.groups = groups;
  if (firstError !== undefined) row.firstError = firstError;
  return row;
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.argv[2] ?? "{}") as LoadPlan;
  const rows: LoadRow[] = [];
  const runsIn = (t: LoadTarget, mode: "json" | "stream") => t.modes?.includes(mode) ?? true;
  // Per target, its workers' connections: opened in the global warm-up, reused by every round.
  const clients = new Map(plan.targets.map((t) => [t, new ClientPool()]));
  const top = Math.max(...plan.concurrency);
  for (const target of plan.targets) {
    const mode = plan.modes.find((m) => runsIn(target, m)) ?? "json";
    await primeConnections(target, top, (target.bodies ?? plan.bodies)[mode], mode === "stream", clients.get(target)!);
  }
  for (const mode of plan.modes) {
    for (const target of plan.targets.filter((t) => runsIn(t, mode)))
      await runLoadCell(
        // Unmeasured: nothing to count.
        { ...target, forwardCounters: undefined },
        mode,
        Math.max(...plan.concurrency),
        (target.bodies ?? plan.bodies)[mode],
        plan.globalWarmupMs,
        0,
        undefined,
        clients.get(target),
      );
  }
  for (let round = 0; round < (plan.rounds ?? 1); round++)
    for (const mode of plan.modes) {
      for (const c of plan.concurrency) {
        for (const target of plan.targets.filter((t) => runsIn(t, mode)))
          rows.push({
            round,
            ...(await runLoadCell(
              target,
              mode,
              c,
              (target.bodies ?? plan.bodies)[mode],
              target.durationMs ?? plan.durationMs,
              plan.warmupMs,
              plan.cpuPids,
              clients.get(target),
            )),
          });
        process.stderr.write(`${mode} c=${c} round ${round + 1} done\n`);
      }
    }
  for (const pool of clients.values()) pool.destroy();
  process.stdout.write(`${JSON.stringify(rows)}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
