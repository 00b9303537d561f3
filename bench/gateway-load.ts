/**
 * The gateway benchmark's load generator, run as a child process so its own work (HTTP parsing, timers,
 * bookkeeping) does not share an event loop with the coordinator it measures. Reads a {@link LoadPlan} as JSON
 * from argv[2], runs every cell (mode × concurrency × target, the two targets back to back per cell so drift on
 * a noisy machine hits both alike), and prints one JSON line of {@link LoadRow}s on stdout.
 *
 * Client: node:http with a keep-alive Agent (one socket per worker), closed-loop workers.
 */
import http from "node:http";
import { pathToFileURL } from "node:url";

/** One endpoint under test. */
export interface LoadTarget {
  label: "direct" | "gateway";
  url: string;
  /** API keys rotated per request (the gateway limits per account; the direct server ignores them). */
  apiKeys: string[];
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
}

/** One measured cell. */
export interface LoadRow {
  target: LoadTarget["label"];
  mode: "json" | "stream";
  concurrency: number;
  ok: number;
  errors: number;
  /** First error seen (status and body start), for the report. */
  firstError?: string;
  requestsPerS: number;
  latencyMs: { p50: number; p99: number };
  /** Time to the first response body bytes (the first SSE event for streams). */
  ttfbMs: { p50: number; p99: number };
}

const pct = (s: Float64Array, p: number) =>
  s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;

function once(
  agent: http.Agent,
  target: LoadTarget,
  key: string,
  body: string,
  stream: boolean,
): Promise<{ ok: boolean; ttfbMs: number; totalMs: number; error?: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let ttfb = 0;
    const req = http.request(
      target.url,
      {
        method: "POST",
        agent,
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${key}`,
          "content-length": Buffer.byteLength(body),
        },
      },
      (res) => {
        let tail = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (ttfb === 0) ttfb = performance.now() - t0;
          tail = (tail + chunk).slice(-200);
        });
        res.on("end", () => {
          const totalMs = performance.now() - t0;
          // A 200 is not enough: a stream must end with [DONE], a JSON body with a closing brace.
          const complete = stream ? tail.includes("[DONE]") : tail.trimEnd().endsWith("}");
          if (res.statusCode === 200 && complete) resolve({ ok: true, ttfbMs: ttfb, totalMs });
          else resolve({ ok: false, ttfbMs: ttfb, totalMs, error: `${res.statusCode} ${tail.slice(0, 160)}` });
        });
        res.on("error", (e) => resolve({ ok: false, ttfbMs: ttfb, totalMs: performance.now() - t0, error: String(e) }));
      },
    );
    req.on("error", (e) => resolve({ ok: false, ttfbMs: 0, totalMs: performance.now() - t0, error: String(e) }));
    req.end(body);
  });
}

/** Runs one closed-loop cell against one target. */
export async function runLoadCell(
  target: LoadTarget,
  mode: "json" | "stream",
  concurrency: number,
  body: string,
  durationMs: number,
  warmupMs: number,
): Promise<LoadRow> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  const lat: number[] = [];
  const ttfb: number[] = [];
  let ok = 0;
  let errors = 0;
  let firstError: string | undefined;
  let n = 0;
  const warmEnd = performance.now() + warmupMs;
  const end = warmEnd + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const r = await once(agent, target, target.apiKeys[n++ % target.apiKeys.length]!, body, mode === "stream");
        if (performance.now() - r.totalMs < warmEnd) continue; // started during warm-up
        if (r.ok) {
          ok++;
          lat.push(r.totalMs);
          ttfb.push(r.ttfbMs);
        } else {
          errors++;
          firstError ??= r.error;
        }
      }
    }),
  );
  agent.destroy();
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
  if (firstError !== undefined) row.firstError = firstError;
  return row;
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.argv[2] ?? "{}") as LoadPlan;
  const rows: LoadRow[] = [];
  for (const mode of plan.modes) {
    for (const target of plan.targets)
      await runLoadCell(target, mode, Math.max(...plan.concurrency), plan.bodies[mode], plan.globalWarmupMs, 0);
  }
  for (const mode of plan.modes) {
    for (const c of plan.concurrency) {
      for (const target of plan.targets)
        rows.push(await runLoadCell(target, mode, c, plan.bodies[mode], plan.durationMs, plan.warmupMs));
      process.stderr.write(`${mode} c=${c} done\n`);
    }
  }
  process.stdout.write(`${JSON.stringify(rows)}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
