/**
 * The cluster benchmark's report (cluster-scale-out.ts runs it): the tables and targets from the load generator's
 * rows. Forwarding is judged on the rounds' samples pooled, throughput on the median of the per-round pairs.
 */
import { markdownTable, round, target, type BenchResult } from "./bench-result.js";
import {
  CONCURRENCY,
  FORWARD_COALESCE_MS,
  FORWARD_MACS,
  FORWARD_MAX_TOKENS,
  FORWARD_MODEL,
  THROUGHPUT_MODEL,
} from "./cluster-setup.js";
import type { LoadGroup, LoadRow } from "./gateway-load.js";

/** Median; NaN when any value is (a round with no completed request on one side proves nothing). */
const median = (values: readonly number[]) => {
  if (values.some((v) => Number.isNaN(v))) return Number.NaN;
  const s = [...values].sort((x, y) => x - y);
  return s.length === 0
    ? Number.NaN
    : s.length % 2
      ? s[(s.length - 1) / 2]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** One cell over its rounds: the median of every figure, errors summed. */
function medianRow(cell: readonly LoadRow[]): LoadRow {
  const m = (pick: (r: LoadRow) => number | undefined) => median(cell.map(pick).filter((v) => v !== undefined));
  const pair = (pick: (r: LoadRow) => { p50: number; p99: number } | undefined) =>
    cell[0] && pick(cell[0]) ? { p50: m((r) => pick(r)?.p50), p99: m((r) => pick(r)?.p99) } : undefined;
  const first = cell[0]!;
  const row: LoadRow = {
    target: first.target,
    mode: first.mode,
    concurrency: first.concurrency,
    ok: cell.reduce((s, r) => s + r.ok, 0),
    errors: cell.reduce((s, r) => s + r.errors, 0),
    requestsPerS: m((r) => r.requestsPerS),
    latencyMs: pair((r) => r.latencyMs)!,
    ttfbMs: pair((r) => r.ttfbMs)!,
  };
  const firstToken = pair((r) => r.firstTokenMs);
  const interChunk = pair((r) => r.interChunkMs);
  if (firstToken) row.firstTokenMs = firstToken;
  if (interChunk) row.interChunkMs = interChunk;
  if (first.cpuPercent)
    row.cpuPercent = Object.fromEntries(Object.keys(first.cpuPercent).map((k) => [k, m((r) => r.cpuPercent?.[k])]));
  // Summed over the rounds like `ok` and `errors`; only when every round could count its forwards.
  if (cell.every((r) => r.forwardsAccepted !== undefined))
    row.forwardsAccepted = cell.reduce((s, r) => s + r.forwardsAccepted!, 0);
  const firstError = cell.find((r) => r.firstError)?.firstError;
  if (firstError !== undefined) row.firstError = firstError;
  return row;
}

/**
 * Per throughput cell that counted its forwards: the share of its requests that ran on another node's Mac (a
 * balanced load should mostly stay where it entered; each forward costs CPU on two nodes and a NATS round trip).
 */
function forwardedShares(rows: readonly LoadRow[]): string[][] {
  return rows
    .filter((r) => r.forwardsAccepted !== undefined && r.ok + r.errors > 0)
    .map((r) => [
      `${r.target}, ${r.mode === "json" ? "non-streaming" : "streaming"}: requests forwarded to another node's Mac`,
      `${round((100 * r.forwardsAccepted!) / (r.ok + r.errors))} % (${r.forwardsAccepted} of ${r.ok + r.errors}, all rounds)`,
    ]);
}

/** A row with its groups' raw samples dropped (their counts kept). */
function withoutSamples(r: LoadRow): Omit<LoadRow, "groups"> & { groupsOk?: Record<string, number> } {
  if (!r.groups) return r;
  const { groups, ...rest } = r;
  return { ...rest, groupsOk: Object.fromEntries(Object.entries(groups).map(([g, x]) => [g, x.ok])) };
}

/** Percentile of raw samples (nearest rank, as the load generator's); NaN for none. */
function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const s = Float64Array.from(samples).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** The forwarding cell's groups pooled over its rounds, and each round's added first-token p99. */
function forwardingFigures(all: readonly LoadRow[], durationMs: number) {
  const cell = all.filter((r) => r.target === "forwarding" && r.groups);
  const pooled = (g: string) => {
    const of = cell.map((r) => r.groups![g]);
    const cat = (pick: (x: LoadGroup) => number[]) => of.flatMap((x) => (x ? pick(x) : []));
    const firstToken = cat((x) => x.firstTokenMs);
    const interChunk = cat((x) => x.interChunkMs);
    const latency = cat((x) => x.latencyMs);
    return {
      ok: of.reduce((n, x) => n + (x?.ok ?? 0), 0),
      // A round where this side completed nothing proves nothing about it.
      everyRound: cell.length > 0 && of.every((x) => (x?.ok ?? 0) > 0),
      requestsPerS:
        cell.length === 0 ? 0 : (of.reduce((n, x) => n + (x?.ok ?? 0), 0) / cell.length / durationMs) * 1000,
      firstTokenMs: { p50: percentile(firstToken, 50), p99: percentile(firstToken, 99) },
      interChunkMs: { p50: percentile(interChunk, 50), p99: percentile(interChunk, 99) },
      latencyMs: { p50: percentile(latency, 50), p99: percentile(latency, 99) },
    };
  };
  const local = pooled("local");
  const forwarded = pooled("forwarded");
  const valid = local.everyRound && forwarded.everyRound;
  const perRound = cell.map((r) => {
    const p99 = (g: string) => percentile(r.groups![g]?.firstTokenMs ?? [], 99);
    return p99("forwarded") - p99("local");
  });
  return {
    local,
    forwarded,
    perRound,
    added: {
      firstTokenP50: forwarded.firstTokenMs.p50 - local.firstTokenMs.p50,
      firstTokenP99: valid ? forwarded.firstTokenMs.p99 - local.firstTokenMs.p99 : Number.NaN,
      interChunkP99: forwarded.interChunkMs.p99 - local.interChunkMs.p99,
    },
    cpuPercent: cell.length > 0 ? medianRow(cell).cpuPercent : undefined,
    errors: cell.reduce((n, r) => n + r.errors, 0),
    firstError: cell.find((r) => r.firstError)?.firstError,
  };
}

/**
 * The section's tables and targets from the load generator's rows (every round of every cell). Forwarding is
 * judged on the samples of all rounds pooled (local and forwarded requests shared each round's moments); the
 * throughput ratios on the median of the per-round pairs (each round's two cells ran back to back).
 */
export function clusterReport(
  all: LoadRow[],
  params: { durationMs: number; forwardDurationMs?: number; rounds: number } & Record<string, unknown>,
): BenchResult {
  const fwd = forwardingFigures(all, params.forwardDurationMs ?? params.durationMs);
  const cells = new Map<string, LoadRow[]>();
  for (const r of all) {
    if (r.target === "forwarding") continue;
    const k = `${r.mode}\u0000${r.target}`;
    cells.set(k, [...(cells.get(k) ?? []), r]);
  }
  const forwardingRows: LoadRow[] = (["local", "forwarded"] as const).map((label) => ({
    target: label,
    mode: "stream",
    concurrency: CONCURRENCY,
    ok: fwd[label].ok,
    errors: label === "local" ? fwd.errors : 0,
    requestsPerS: fwd[label].requestsPerS,
    latencyMs: fwd[label].latencyMs,
    ttfbMs: fwd[label].firstTokenMs,
    firstTokenMs: fwd[label].firstTokenMs,
    interChunkMs: fwd[label].interChunkMs,
    ...(label === "local" && fwd.firstError !== undefined ? { firstError: fwd.firstError } : {}),
  }));
  const throughputRows = [...cells.values()].map(medianRow);
  const rows = [...forwardingRows, ...throughputRows];
  const perRound = (t: string, base: string, mode: LoadRow["mode"]) =>
    [...new Set(all.map((r) => r.round ?? 0))].map((round) => {
      const of = (label: string) => all.find((r) => r.target === label && r.mode === mode && (r.round ?? 0) === round)!;
      return { t: of(t), base: of(base) };
    });
  const f = (v: number | undefined) => (v === undefined ? "" : round(v));
  const pair = (p: { p50: number; p99: number } | undefined) => (p ? `${f(p.p50)} / ${f(p.p99)}` : "");
  const table = markdownTable(
    [
      "comparison",
      "mode",
      "entry",
      "req/s",
      "latency p50 / p99 ms",
      "first token p50 / p99 ms",
      "inter-chunk p50 / p99 ms",
      "errors",
    ],
    rows.map((r) => [
      r.target === "local" || r.target === "forwarded" ? "forwarding (one cell)" : "throughput",
      r.mode === "json" ? "non-streaming" : "streaming",
      r.target,
      f(r.requestsPerS),
      pair(r.latencyMs),
      pair(r.firstTokenMs),
      pair(r.interChunkMs),
      r.errors > 0 ? `${r.errors}${r.firstError ? ` (${r.firstError.slice(0, 60).replace(/\|/g, "/")})` : ""}` : "0",
    ]),
  );
  const ratios = (mode: LoadRow["mode"]) =>
    perRound("3 nodes", "one node", mode).map(({ t, base }) => t.requestsPerS / base.requestsPerS);
  // The reference (no target): three coordinators that are not a cluster, against one, and the cluster against them.
  const hasLone = all.some((r) => r.target === "3 lone nodes");
  const ratiosOf = (t: string, base: string, mode: LoadRow["mode"]) =>
    hasLone ? perRound(t, base, mode).map((p) => p.t.requestsPerS / p.base.requestsPerS) : [];
  const rounds = {
    addedFirstTokenP99: fwd.perRound,
    throughputStream: ratios("stream"),
    throughputJson: ratios("json"),
    loneStream: ratiosOf("3 lone nodes", "one node", "stream"),
    loneJson: ratiosOf("3 lone nodes", "one node", "json"),
    clusterVsLoneStream: ratiosOf("3 nodes", "3 lone nodes", "stream"),
    clusterVsLoneJson: ratiosOf("3 nodes", "3 lone nodes", "json"),
  };
  const added = fwd.added;
  const throughput = { stream: median(rounds.throughputStream), json: median(rounds.throughputJson) };
  const reference = {
    loneStream: median(rounds.loneStream),
    loneJson: median(rounds.loneJson),
    clusterVsLoneStream: median(rounds.clusterVsLoneStream),
    clusterVsLoneJson: median(rounds.clusterVsLoneJson),
  };
  const targets = [
    target(`added first-token p99, forwarded − local, ${CONCURRENCY} streams`, added.firstTokenP99, "<=", 5, "ms"),
    // The design brief's companions to the issue's p99 bound (../shared/reference/scale-out.md §5): a p99 alone can
    // read well while the median pays, when the local side's tail is the longer one.
    target("added first-token p50, forwarded − local (design brief)", added.firstTokenP50, "<=", 1, "ms"),
    target("added inter-chunk p99, forwarded − local (design brief)", added.interChunkP99, "<=", 2, "ms"),
    target(`streaming throughput 3 nodes ÷ one node, ${CONCURRENCY} concurrent`, throughput.stream, ">=", 0.9, "×"),
    target(`non-streaming throughput 3 nodes ÷ one node, ${CONCURRENCY} concurrent`, throughput.json, ">=", 0.9, "×"),
    target(
      "failed requests (any entry)",
      rows.reduce((s, r) => s + r.errors, 0),
      "<",
      1,
      "requests",
    ),
  ];
  const list = (v: number[]) => v.map((x) => f(x)).join(", ");
  const summary = markdownTable(
    ["", "value"],
    [
      ["added first-token p50 / p99 (forwarded − local)", `${f(added.firstTokenP50)} / ${f(added.firstTokenP99)} ms`],
      ["added inter-chunk p99 (forwarded − local)", `${f(added.interChunkP99)} ms`],
      ["throughput 3 nodes ÷ one node, streaming / non-streaming", `${f(throughput.stream)}× / ${f(throughput.json)}×`],
      ...forwardedShares(throughputRows),
      ["per round: added first-token p99 (ms)", list(rounds.addedFirstTokenP99)],
      [
        "per round: throughput ratio streaming / non-streaming",
        `${list(rounds.throughputStream)} / ${list(rounds.throughputJson)}`,
      ],
      ...(hasLone
        ? [
            [
              "reference: 3 lone nodes ÷ one node, streaming / non-streaming (splitting the machine, no cluster)",
              `${f(reference.loneStream)}× / ${f(reference.loneJson)}×`,
            ],
            [
              "reference: 3 nodes ÷ 3 lone nodes, streaming / non-streaming (the cost of being a cluster)",
              `${f(reference.clusterVsLoneStream)}× / ${f(reference.clusterVsLoneJson)}×`,
            ],
          ]
        : []),
    ],
  );
  // The forwarding cell's CPU is one figure for both kinds of entry: they ran together.
  const cpuRows: LoadRow[] = [
    ...(fwd.cpuPercent
      ? [
          {
            ...forwardingRows[0]!,
            target: "forwarding cell (A, B, C)",
            requestsPerS: fwd.local.requestsPerS + fwd.forwarded.requestsPerS,
            cpuPercent: fwd.cpuPercent,
          },
        ]
      : []),
    ...throughputRows,
  ];
  const procs = [...new Set(cpuRows.flatMap((r) => Object.keys(r.cpuPercent ?? {})))];
  const coordinators = procs.filter((p) => p.startsWith("bench process") || /^(lone )?[BC]$/.test(p));
  const cpu = markdownTable(
    ["mode", "entry", ...procs.map((p) => `${p} CPU %`), "coordinators' CPU ms / request"],
    cpuRows.map((r) => {
      const c = r.cpuPercent ?? {};
      // % of a core = 10 ms of CPU per second; over the requests completed per second.
      const perRequest = (coordinators.reduce((s, p) => s + (c[p] ?? 0), 0) * 10) / r.requestsPerS;
      return [
        r.mode === "json" ? "non-streaming" : "streaming",
        r.target,
        ...procs.map((p) => f(c[p])),
        r.requestsPerS > 0 ? f(perRequest) : "",
      ];
    }),
  );
  const note = `Closed-loop keep-alive clients, ${CONCURRENCY} at a time. Forwarding: one cell per round, its requests rotated over the 3 nodes' HTTP ports; node A owns every ${FORWARD_MODEL} Mac (${FORWARD_MACS} Macs decoding at the simulated chip's pace, chunks at most every ${FORWARD_COALESCE_MS} ms, ${FORWARD_MAX_TOKENS} tokens per request), so requests entering at A are "local" and those entering at B or C are "forwarded" to A over NATS; its figures pool the ${params.rounds} rounds' samples. Throughput: instant Macs, every figure the median over ${params.rounds} rounds, the two cells of a round back to back; "one node": a coordinator on its own with ${params.macs} ${THROUGHPUT_MODEL} Macs; "3 nodes": the cluster with as many Macs spread over its nodes, load round-robin over the 3 HTTP ports${hasLone ? `; "3 lone nodes": three coordinators that are not a cluster (no NATS), each with ${params.loneMacsPerNode} Macs of its own, load round-robin over their ports` : ""}. ${JSON.stringify(params)}`;
  return {
    name: "cluster",
    title: "Cluster scale-out: forwarding overhead and 3 nodes vs one",
    markdown: `${table}\n\n${summary}\n\nWhere the time went (CPU over each measured window, % of one core; PostgreSQL not included):\n\n${cpu}\n\n${note}`,
    targets,
    // The raw samples behind the pooled figures stay out of the results file.
    data: { ...params, added, throughput, reference, rounds, medians: rows, rows: all.map(withoutSamples) },
  };
}
