/**
 * Scheduler decision cost: `pick()` (src/scheduler/pick.ts) timed per decision over synthetic registry
 * snapshots of 100, 1,000 and 10,000 providers with a realistic mix (chips, models on disk, warm/loading
 * slots, requests in flight, a few draining or hot Macs). Side by side in one run:
 * - `kv-aware`: the production policy over the full snapshot (what the coordinator runs per request);
 * - `worst-case`: the Go coordinator's policy, same snapshot;
 * - `kv-aware/no index`: the same pick handed only the model's advertisers but not the registry's warm index
 *   (`ProviderRegistry.view().warmByModel`), so it must filter every advertiser for a warm slot before its
 *   sampled walk: what the registry's indexes save;
 * - `naive scan`: a least-loaded full scan with no gates or admission, the floor of any full-scan design.
 */
import { defaultCatalog } from "../src/models/catalog.js";
import { chipProfiles } from "../src/tools/fleet/chip-profiles.js";
import { HealthTracker } from "../src/health/health-tracker.js";
import { shapeOf } from "../src/inference/types.js";
import type { InflightRequest, ModelSlot, ProviderModel, ProviderView, RegistryView } from "../src/registry/types.js";
import { pick, type PickContext } from "../src/scheduler/pick.js";
import { resolveSchedulerOptions } from "../src/scheduler/scheduler-options.js";
import { worstCasePolicy } from "../src/tools/simulate/baseline/worst-case-policy.js";
import type { RouteRequest } from "../src/scheduler/types.js";
import { mulberry32 } from "../src/tools/shared/mulberry32.js";
import { OutputEstimator } from "../src/util/output-estimator.js";
import { markdownTable, percentileSorted, ratio, round, target, type BenchResult } from "./bench-result.js";

/** Options of {@link runSchedulerBench}. */
export interface SchedulerBenchOptions {
  /** Fleet sizes (default 100, 1000, 10000). */
  sizes?: number[];
  /** Wall time per (size, variant), ms (default 2000; the smoke test uses ~100). */
  timePerCellMs?: number;
  /** Minimum decisions per cell even past the time budget (default 200). */
  minDecisions?: number;
  seed?: number;
}

/** One measured (size, variant) cell. */
export interface SchedulerRow {
  providers: number;
  variant: "kv-aware" | "worst-case" | "kv-aware/no index" | "naive scan";
  decisions: number;
  decisionsPerS: number;
  p50Us: number;
  p99Us: number;
  /** Share of decisions that picked a provider (the rest queued or rejected). */
  pickedShare: number;
}

const GB = 1_000_000_000;
const chips = chipProfiles.filter((c) => c.memoryGb >= 24);

/** A synthetic connected fleet of `n` providers; deterministic for a seed. */
export function syntheticView(
  n: number,
  seed: number,
): RegistryView & { byModel: Map<string, ProviderView[]>; warmByModel: Map<string, ProviderView[]> } {
  const r = mulberry32(seed);
  const providers: ProviderView[] = [];
  const byModel = new Map<string, ProviderView[]>();
  const warmByModel = new Map<string, ProviderView[]>();
  for (let i = 0; i < n; i++) {
    const chip = chips[Math.floor(r() * chips.length)]!;
    const onDisk = defaultCatalog.filter((m) => m.sizeBytes * 1.3 < chip.memoryGb * GB && r() < 0.7);
    if (onDisk.length === 0) onDisk.push(defaultCatalog[2]!);
    const models: ProviderModel[] = onDisk.map((m) => ({
      id: m.id,
      sizeBytes: m.sizeBytes,
      quantization: "4bit",
      contextLength: m.contextLength,
      isVision: m.isVision,
      templateRenderOk: undefined,
    }));
    const slots: ModelSlot[] = [];
    const inflight = new Map<string, InflightRequest>();
    const pendingLoads = new Map<string, number>();
    for (const m of onDisk) {
      const roll = r();
      if (slots.length < 2 && roll < 0.45) {
        const running = Math.floor(r() * 6);
        slots.push({
          model: m.id,
          state: running > 0 ? "running" : "idle",
          numRunning: running,
          numWaiting: 0,
          maxConcurrency: 8,
          tokenBudgetUsed: running * 3000,
          tokenBudgetMax: 200_000,
          kvBytesPerToken: m.kvBytesPerToken,
          observedDecodeTps: 30 + r() * 60,
          observedPrefillTps: 300 + r() * 900,
          modelLoadTimeMs: 8000 + r() * 10_000,
        });
        for (let k = 0; k < running; k++) {
          const id = `req-${i}-${m.id}-${k}`;
          inflight.set(id, {
            requestId: id,
            model: m.id,
            reservedTokens: 3000,
            usedTokens: 1500,
            remainingOutputTokens: 800,
            startedAtMs: 0,
            seenByProvider: r() < 0.8,
          });
        }
      } else if (roll < 0.5) {
        pendingLoads.set(m.id, 0);
      }
    }
    const status = r() < 0.02 ? "draining" : inflight.size > 0 ? "serving" : "idle";
    const p: ProviderView = {
      id: `prov_${i}`,
      serial: `SYN-${i}`,
      accountId: `acct-${i % 97}`,
      version: r() < 0.1 ? "0.6.5" : "0.7.0",
      hardware: {
        chipName: chip.chipName,
        chipFamily: chip.chipFamily,
        memoryGb: chip.memoryGb,
        memoryBandwidthGbs: chip.memoryBandwidthGbs,
        gpuCores: chip.gpuCores,
      },
      decodeTps: 40,
      prefillTps: 500,
      maxModelSlots: 2,
      models,
      status,
      memoryPressure: r() * 0.6,
      cpuUsage: r() * 0.5,
      thermal: r() < 0.03 ? "serious" : "nominal",
      totalMemoryGb: chip.memoryGb,
      freeForLoadGb: undefined,
      slots,
      warmModels: slots.map((s) => s.model),
      lastHeartbeatMs: 0,
      connectedAtMs: 0,
      inflight,
      pendingLoads,
    };
    providers.push(p);
    for (const m of models) {
      let list = byModel.get(m.id);
      if (!list) byModel.set(m.id, (list = []));
      list.push(p);
    }
    for (const s of slots) {
      let list = warmByModel.get(s.model);
      if (!list) warmByModel.set(s.model, (list = []));
      list.push(p);
    }
  }
  // The same indexes ProviderRegistry.view() maintains.
  return { providers, byModel, warmByModel };
}

/** A rotating set of realistic requests (models, prompt sizes, budgets, some tools and vision). */
function requestMix(seed: number, count: number): RouteRequest[] {
  const r = mulberry32(seed ^ 0x5eed);
  return Array.from({ length: count }, (_, i) => {
    const model = defaultCatalog[Math.floor(r() * defaultCatalog.length)]!;
    const traits = {
      maxTokens: [256, 1024, 4096, 8192][Math.floor(r() * 4)]!,
      estimatedPromptTokens: Math.floor(200 + r() * 8000),
      hasTools: r() < 0.2,
      requiresVision: model.isVision && r() < 0.3,
      stream: r() < 0.7,
    };
    return { requestId: `bench-${i}`, model: model.id, traits, shape: shapeOf(traits), exclude: new Set<string>() };
  });
}

/** The floor of a full scan: first advertiser with the fewest requests in flight, no gates. */
function naiveScan(view: RegistryView, req: RouteRequest): ProviderView | undefined {
  let best: ProviderView | undefined;
  for (const p of view.providers) {
    if (!p.models.some((m) => m.id === req.model)) continue;
    if (!best || p.inflight.size < best.inflight.size) best = p;
  }
  return best;
}

function timeLoop(
  timeMs: number,
  minDecisions: number,
  decide: (i: number) => boolean,
): Omit<SchedulerRow, "providers" | "variant"> {
  const samples: number[] = [];
  let picked = 0;
  // Warm up the JIT so the first (interpreted) calls do not dominate the tail.
  for (let i = 0; i < 50; i++) decide(i);
  const start = performance.now();
  const end = start + timeMs;
  let i = 0;
  while (performance.now() < end || i < minDecisions) {
    const t0 = performance.now();
    if (decide(i)) picked++;
    samples.push(performance.now() - t0);
    i++;
  }
  const elapsedMs = performance.now() - start;
  const s = Float64Array.from(samples).sort();
  return {
    decisions: i,
    decisionsPerS: (i / elapsedMs) * 1000,
    p50Us: percentileSorted(s, 50) * 1000,
    p99Us: percentileSorted(s, 99) * 1000,
    pickedShare: picked / i,
  };
}

/** Runs the benchmark and returns its table, target (p99 < 100 µs at the largest size) and rows. */
export function runSchedulerBench(options: SchedulerBenchOptions = {}): BenchResult {
  const sizes = options.sizes ?? [100, 1_000, 10_000];
  const timeMs = options.timePerCellMs ?? 2_000;
  const seed = options.seed ?? 7;
  const requests = requestMix(seed, 512);
  const kv = resolveSchedulerOptions();
  const worst = resolveSchedulerOptions({ policy: worstCasePolicy });
  const ctxFor = (o: typeof kv): PickContext => ({
    nowMs: 1_000,
    random: mulberry32(seed),
    health: new HealthTracker(),
    estimator: new OutputEstimator(),
    catalog: defaultCatalog,
    options: o,
  });
  const rows: SchedulerRow[] = [];
  for (const n of sizes) {
    const view = syntheticView(n, seed + n);
    const subViews = new Map([...view.byModel].map(([m, list]) => [m, { providers: list }]));
    const empty: RegistryView = { providers: [] };
    const ctxKv = ctxFor(kv);
    const ctxWorst = ctxFor(worst);
    const variants: [SchedulerRow["variant"], (i: number) => boolean][] = [
      ["kv-aware", (i) => pick(view, requests[i % requests.length]!, ctxKv).kind === "picked"],
      ["worst-case", (i) => pick(view, requests[i % requests.length]!, ctxWorst).kind === "picked"],
      [
        "kv-aware/no index",
        (i) => {
          const q = requests[i % requests.length]!;
          return pick(subViews.get(q.model) ?? empty, q, ctxKv).kind === "picked";
        },
      ],
      ["naive scan", (i) => naiveScan(view, requests[i % requests.length]!) !== undefined],
    ];
    for (const [variant, decide] of variants)
      rows.push({ providers: n, variant, ...timeLoop(timeMs, options.minDecisions ?? 200, decide) });
  }
  const rowOf = (n: number, v: SchedulerRow["variant"]) => rows.find((r) => r.providers === n && r.variant === v)!;
  const table = markdownTable(
    [
      "providers",
      "variant",
      "decisions",
      "decisions/s",
      "p50 µs",
      "p99 µs",
      "picked",
      "p99 vs kv-aware",
      "decisions/s vs naive scan",
    ],
    rows.map((r) => [
      r.providers,
      r.variant,
      r.decisions,
      Math.round(r.decisionsPerS),
      round(r.p50Us),
      round(r.p99Us),
      `${Math.round(r.pickedShare * 100)} %`,
      ratio(r.p99Us, rowOf(r.providers, "kv-aware").p99Us),
      ratio(r.decisionsPerS, rowOf(r.providers, "naive scan").decisionsPerS),
    ]),
  );
  const largest = Math.max(...sizes);
  const prod = rowOf(largest, "kv-aware");
  const noIndex = rowOf(largest, "kv-aware/no index");
  const targets = [target(`kv-aware pick p99 at ${largest} providers`, prod.p99Us, "<", 100, "µs")];
  const note =
    `Synthetic fleets (seed ${seed}), 512 rotating requests, ${timeMs} ms per cell. kv-aware: the production pick over ` +
    `the registry snapshot with its per-model and warm indexes (gates, admission and cost on a bounded random sample ` +
    `of candidates). kv-aware/no index: the same pick without the warm index, filtering every advertiser first: ` +
    `p99 ${ratio(noIndex.p99Us, prod.p99Us)} the indexed pick at ${largest}.`;
  return {
    name: "scheduler",
    title: "Scheduler decision cost",
    markdown: `${table}\n\n${note}`,
    targets,
    data: { sizes, timePerCellMs: timeMs, seed, rows },
  };
}
