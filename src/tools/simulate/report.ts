/**
 * Per-model statistics of a simulation run and the side-by-side Markdown comparison of two runs (and the
 * clairvoyant bound's, when given).
 */
import { describeServiceLevel } from "./service-level.js";

/** Summary of one model in one run. */
export interface ModelReport {
  model: string;
  arrivals: number;
  admitted: number;
  queued: number;
  rejected: number;
  rejectReasons: Record<string, number>;
  completed: number;
  ttftMs: { p50: number; p95: number; p99: number };
  /** The slowest first token of the run (the load-test report quotes its tail as a single "stretches to" figure). */
  ttftMaxMs: number;
  e2eMs: { p50: number; p95: number; p99: number };
  /**
   * Macs actively running ≥ 1 request of the model (slot state "running"), sampled every 10 s: the load-test
   * report's `warm_providers` (an idle loaded slot counted as cold there). Issue 4's warm target is judged on it.
   */
  runningMacs: MinMedianMax;
  /**
   * {@link runningMacs} over the samples taken while no finite burst (a worker group with a request count) was
   * sending or running: what the load-test report's "warm distribution over the run" describes, since its
   * bursts ran on top of that run and pushed warm beyond it (Burst B: 10 → 32).
   */
  runningMacsBetweenBursts: MinMedianMax;
  /** Macs with the model loaded (slot running or idle), sampled every 10 s: a pool's warm count under pools. */
  loadedMacs: MinMedianMax;
  /** Macs assigned to the model's pool, sampled every 10 s (zeros without pools). */
  poolMembers: MinMedianMax;
  /** Idle, empty Macs moved into the model's pool on demand. */
  reassignments: number;
  /** Requests of the model dispatched and not finished, sampled every 10 s: an upper bound on runningMacs. */
  inflightRequests: MinMedianMax;
  capableMacs: number;
  /** Share of capable Mac-time spent running this model. */
  utilisation: number;
  /** Output tokens per second over the run. */
  throughputTps: number;
  refusedWhileIdle: number;
  loadRefusals: number;
  coldDispatches: number;
  warmLoads: number;
  stillQueued: number;
  /** Completed within the service level (service-level.ts), per simulated hour. */
  goodputPerHour: number;
  /** Completed but late to the first token / too slow in decode (the first miss counted, first token first). */
  missedFirstToken: number;
  missedDecode: number;
  /**
   * Mean requests in flight per running Mac, over the 10 s samples at which a capable Mac ran nothing (cold or
   * idle); 0 when there was no such moment. The load-test report's pathology: high while Macs sit cold.
   */
  spread: number;
  /** Requests whose Mac left mid-request (churn) and were routed again. */
  interrupted: number;
}

export interface SimulationReport {
  scenario: string;
  policy: string;
  seed: number;
  durationMs: number;
  macs: number;
  models: ModelReport[];
}

/** A sampled count over a run. */
export interface MinMedianMax {
  min: number;
  median: number;
  max: number;
}

/** Nearest-rank percentile of unsorted values (0 for none). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** Mutable counters a simulation fills for one model. */
export class ModelStats {
  arrivals = 0;
  admitted = 0;
  queued = 0;
  rejected = 0;
  readonly rejectReasons = new Map<string, number>();
  completed = 0;
  readonly ttftMs: number[] = [];
  readonly e2eMs: number[] = [];
  readonly runningSamples: number[] = [];
  readonly runningBetweenBurstsSamples: number[] = [];
  readonly loadedSamples: number[] = [];
  readonly inflightSamples: number[] = [];
  readonly poolMemberSamples: number[] = [];
  reassignments = 0;
  outputTokens = 0;
  refusedWhileIdle = 0;
  loadRefusals = 0;
  coldDispatches = 0;
  warmLoads = 0;
  stillQueued = 0;
  capableMacs = 0;
  busyMacMs = 0;
  good = 0;
  missedFirstToken = 0;
  missedDecode = 0;
  interrupted = 0;
  readonly spreadSamples: number[] = [];

  constructor(readonly model: string) {}

  summary(durationMs: number): ModelReport {
    const pct = (xs: number[]) => ({ p50: percentile(xs, 50), p95: percentile(xs, 95), p99: percentile(xs, 99) });
    return {
      model: this.model,
      arrivals: this.arrivals,
      admitted: this.admitted,
      queued: this.queued,
      rejected: this.rejected,
      rejectReasons: Object.fromEntries(this.rejectReasons),
      completed: this.completed,
      ttftMs: pct(this.ttftMs),
      ttftMaxMs: this.ttftMs.reduce((a, b) => Math.max(a, b), 0),
      e2eMs: pct(this.e2eMs),
      runningMacs: minMedianMax(this.runningSamples),
      runningMacsBetweenBursts: minMedianMax(this.runningBetweenBurstsSamples),
      loadedMacs: minMedianMax(this.loadedSamples),
      inflightRequests: minMedianMax(this.inflightSamples),
      poolMembers: minMedianMax(this.poolMemberSamples),
      reassignments: this.reassignments,
      capableMacs: this.capableMacs,
      utilisation: this.capableMacs > 0 ? this.busyMacMs / (this.capableMacs * durationMs) : 0,
      throughputTps: this.outputTokens / (durationMs / 1000),
      refusedWhileIdle: this.refusedWhileIdle,
      loadRefusals: this.loadRefusals,
      coldDispatches: this.coldDispatches,
      warmLoads: this.warmLoads,
      stillQueued: this.stillQueued,
      goodputPerHour: this.good / (durationMs / 3_600_000),
      missedFirstToken: this.missedFirstToken,
      missedDecode: this.missedDecode,
      spread:
        this.spreadSamples.length === 0 ? 0 : this.spreadSamples.reduce((a, b) => a + b, 0) / this.spreadSamples.length,
      interrupted: this.interrupted,
    };
  }
}

function minMedianMax(xs: readonly number[]): MinMedianMax {
  if (xs.length === 0) return { min: 0, median: 0, max: 0 };
  let min = Infinity;
  let max = -Infinity;
  for (const x of xs) {
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  return { min, median: percentile(xs, 50), max };
}

const reasons = (r: Record<string, number>) =>
  Object.entries(r)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ") || "—";
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mmm = (x: MinMedianMax) => `${x.min} / ${x.median} / ${x.max}`;
const ratio = (a: number, b: number) => (b === 0 ? (a === 0 ? "=" : "∞") : `${(a / b).toFixed(2)}×`);

/** One target of issue 4 on the comparison: what was measured and whether it is met. */
export interface TargetCheck {
  name: string;
  measured: string;
  met: boolean;
}

/**
 * Issue 4's targets on `model` (gemma in the shipped scenario) that still stand: first-token p95 ≤ half the
 * worst-case policy's, and zero refusals while a capable Mac was idle. (Its "median warm (running) Macs ≥ 3×
 * worst-case" is retired by issue 18: a Mac only counts as running while it runs a request, so the median in
 * flight bounds it below 3× on the load-test scenario; the clairvoyant bound and the spread replace it.)
 */
export function checkTargets(
  ours: SimulationReport,
  worstCase: SimulationReport,
  model = "gemma-4-26b",
): TargetCheck[] {
  const m = ours.models.find((x) => x.model === model);
  const w = worstCase.models.find((x) => x.model === model);
  if (!m || !w) return [];
  const ttftRatio = w.ttftMs.p95 === 0 ? Infinity : m.ttftMs.p95 / w.ttftMs.p95;
  return [
    {
      name: `${model}: first-token p95 ≤ ½ worst-case`,
      measured: `${s(m.ttftMs.p95)} vs ${s(w.ttftMs.p95)} (${ttftRatio.toFixed(2)}×)`,
      met: ttftRatio <= 0.5,
    },
    {
      name: `${model}: zero refusals while a capable Mac was idle`,
      measured: `${m.refusedWhileIdle} (worst-case ${w.refusedWhileIdle})`,
      met: m.refusedWhileIdle === 0,
    },
  ];
}

/** What {@link formatComparison} adds besides the two runs. */
export interface ComparisonExtras {
  /** The clairvoyant bound's run: a third column and an "ours ÷ bound" ratio. */
  bound?: SimulationReport;
  /** The targets to print (default: issue 4's against the worst-case policy). */
  targets?: TargetCheck[];
  /** Title of the targets table. */
  targetsTitle?: string;
}

/**
 * A Markdown table per model: ours vs the baseline (worst-case, or no pools), with ratios — and the clairvoyant
 * bound with ours ÷ bound when given — then the targets.
 */
export function formatComparison(
  ours: SimulationReport,
  worstCase: SimulationReport,
  extras: ComparisonExtras = {},
): string {
  const bound = extras.bound;
  const lines: string[] = [
    `Scenario ${ours.scenario}: ${ours.macs} Macs, ${(ours.durationMs / 3_600_000).toFixed(2)} h simulated, seed ${ours.seed}`,
    "Warm (running) = Macs running ≥ 1 request of the model (the load-test report's warm_providers). " +
      "Loaded = model loaded, running or idle. Both sampled every 10 s over the whole run. " +
      "First token = arrival to first token (queue + load + prefills ahead on the Mac + own prefill).",
    `Service level (goodput): ${describeServiceLevel()}; goodput = requests completed within it per simulated hour. ` +
      "Spread = mean requests in flight per running Mac at the 10 s samples when a capable Mac ran nothing.",
    ...(bound
      ? [
          "Clairvoyant = the bound: knows every request's true output length and every Mac's true speed, pre-warms " +
            "perfectly (a load ends exactly when the Mac is needed, within memory and 16 parallel loads), and places " +
            "each request on the Mac with the earliest first token that keeps the service level.",
        ]
      : []),
    "",
  ];
  for (const m of ours.models) {
    const w = worstCase.models.find((x) => x.model === m.model);
    if (!w) continue;
    const b = bound?.models.find((x) => x.model === m.model);
    const pooledRows = m.poolMembers.max + w.poolMembers.max > 0;
    const churnRows = m.interrupted + w.interrupted + (b?.interrupted ?? 0) > 0;
    const defs = rowDefs(pooledRows, churnRows);
    const rows = defs.map((d): [string, string, string, string] => [
      d.label,
      d.fmt(m),
      d.fmt(w),
      d.cmp ? ratio(d.cmp(m), d.cmp(w)) : "",
    ]);
    if (b) {
      lines.push(
        `### ${m.model} (${m.capableMacs} capable Macs)`,
        "",
        `| metric | ${ours.policy} | ${worstCase.policy} | ${bound!.policy} | ours ÷ worst-case | ours ÷ bound |`,
        "|---|---|---|---|---|---|",
      );
      defs.forEach((d, i) => {
        const r = rows[i]!;
        lines.push(
          `| ${r[0]} | ${r[1]} | ${r[2]} | ${d.fmt(b)} | ${r[3]} | ${d.cmp ? ratio(d.cmp(m), d.cmp(b)) : ""} |`,
        );
      });
      lines.push("");
      continue;
    }
    lines.push(
      `### ${m.model} (${m.capableMacs} capable Macs)`,
      "",
      `| metric | ${ours.policy} | ${worstCase.policy} | ratio |`,
      "|---|---|---|---|",
    );
    for (const r of rows) lines.push(`| ${r.join(" | ")} |`);
    lines.push("");
  }
  // Issue 4's targets are against the Go policy only.
  const targets = extras.targets ?? (worstCase.policy === "worst-case" ? checkTargets(ours, worstCase) : []);
  if (targets.length > 0) {
    lines.push(
      `### ${extras.targetsTitle ?? "Targets (issue 4)"}`,
      "",
      "| target | measured | status |",
      "|---|---|---|",
    );
    for (const t of targets) lines.push(`| ${t.name} | ${t.measured} | ${t.met ? "met" : "NOT met"} |`);
    lines.push("");
  }
  return lines.join("\n");
}

/** One row of {@link formatComparison}'s table: how a run's value reads, and the number ratios compare. */
interface RowDef {
  label: string;
  fmt: (m: ModelReport) => string;
  cmp?: (m: ModelReport) => number;
}

/** The comparison's rows, in order (pool rows only when a run had pools, the churn row only with churn). */
function rowDefs(pooled: boolean, churn: boolean): RowDef[] {
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  return [
    {
      label: "goodput (requests within the service level per hour)",
      fmt: (m) => m.goodputPerHour.toFixed(0),
      cmp: (m) => m.goodputPerHour,
    },
    {
      label: "completed but missed first token / decode",
      fmt: (m) => `${m.missedFirstToken} / ${m.missedDecode}`,
      cmp: (m) => m.missedFirstToken + m.missedDecode,
    },
    {
      label: "spread (requests per running Mac while a capable Mac is idle)",
      fmt: (m) => m.spread.toFixed(2),
      cmp: (m) => m.spread,
    },
    { label: "arrivals", fmt: (m) => `${m.arrivals}`, cmp: (m) => m.arrivals },
    { label: "admitted", fmt: (m) => `${m.admitted}`, cmp: (m) => m.admitted },
    { label: "completed", fmt: (m) => `${m.completed}`, cmp: (m) => m.completed },
    {
      label: "cold dispatches / planner loads (bound: pre-warms)",
      fmt: (m) => `${m.coldDispatches} / ${m.warmLoads}`,
      cmp: (m) => m.coldDispatches + m.warmLoads,
    },
    { label: "ever queued", fmt: (m) => `${m.queued}`, cmp: (m) => m.queued },
    { label: "rejected (429/503)", fmt: (m) => `${m.rejected}`, cmp: (m) => m.rejected },
    { label: "rejected by reason", fmt: (m) => reasons(m.rejectReasons) },
    {
      label: "refused while a capable Mac was idle",
      fmt: (m) => `${m.refusedWhileIdle}`,
      cmp: (m) => m.refusedWhileIdle,
    },
    { label: "load refusals (Mac refused a routed load)", fmt: (m) => `${m.loadRefusals}`, cmp: (m) => m.loadRefusals },
    { label: "first token p50", fmt: (m) => s(m.ttftMs.p50), cmp: (m) => m.ttftMs.p50 },
    { label: "first token p95", fmt: (m) => s(m.ttftMs.p95), cmp: (m) => m.ttftMs.p95 },
    { label: "first token p99", fmt: (m) => s(m.ttftMs.p99), cmp: (m) => m.ttftMs.p99 },
    { label: "first token max", fmt: (m) => s(m.ttftMaxMs), cmp: (m) => m.ttftMaxMs },
    { label: "end-to-end p50", fmt: (m) => s(m.e2eMs.p50), cmp: (m) => m.e2eMs.p50 },
    { label: "end-to-end p95", fmt: (m) => s(m.e2eMs.p95), cmp: (m) => m.e2eMs.p95 },
    { label: "end-to-end p99", fmt: (m) => s(m.e2eMs.p99), cmp: (m) => m.e2eMs.p99 },
    {
      label: "warm (running) Macs min / median / max",
      fmt: (m) => mmm(m.runningMacs),
      cmp: (m) => m.runningMacs.median,
    },
    { label: "loaded Macs min / median / max", fmt: (m) => mmm(m.loadedMacs), cmp: (m) => m.loadedMacs.median },
    ...(pooled
      ? [
          {
            label: "pool members min / median / max",
            fmt: (m: ModelReport) => mmm(m.poolMembers),
            cmp: (m: ModelReport) => m.poolMembers.median,
          },
          {
            label: "Macs reassigned into the pool",
            fmt: (m: ModelReport) => `${m.reassignments}`,
            cmp: (m: ModelReport) => m.reassignments,
          },
        ]
      : []),
    {
      label: "requests in flight min / median / max (bounds running Macs)",
      fmt: (m) => mmm(m.inflightRequests),
      cmp: (m) => m.inflightRequests.median,
    },
    { label: "utilisation of capable Macs", fmt: (m) => pct(m.utilisation), cmp: (m) => m.utilisation },
    { label: "output tok/s", fmt: (m) => m.throughputTps.toFixed(0), cmp: (m) => m.throughputTps },
    ...(churn
      ? [
          {
            label: "interrupted (Mac left mid-request)",
            fmt: (m: ModelReport) => `${m.interrupted}`,
            cmp: (m: ModelReport) => m.interrupted,
          },
        ]
      : []),
  ];
}
