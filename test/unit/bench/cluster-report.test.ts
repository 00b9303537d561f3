/**
 * The cluster benchmark's arithmetic (bench/cluster-report.ts) and the load generator's first-token clock
 * (bench/gateway-load.ts), on synthetic rows: forwarding is judged on the rounds' samples pooled (local and
 * forwarded requests ran in one cell), throughput on the median of per-round paired ratios, and a round where
 * one side completed nothing proves nothing (the target reads n/a and is not met).
 */
import assert from "node:assert/strict";
import { clusterReport } from "../../../bench/cluster-report.js";
import type { LoadGroup, LoadRow } from "../../../bench/gateway-load.js";
import { StreamTimer } from "../../../bench/load-client.js";

const PARAMS = { rounds: 3, durationMs: 1000 };

/** `n` first-token samples spread evenly from 1 to `top` ms (so p99 is about `top`). */
function group(n: number, top: number): LoadGroup {
  const firstTokenMs = Array.from({ length: n }, (_, i) => 1 + ((top - 1) * i) / Math.max(1, n - 1));
  return { ok: n, firstTokenMs, latencyMs: firstTokenMs.map((v) => v * 10), interChunkMs: [1, 2, 3] };
}

/** One round of the forwarding cell: its local and forwarded groups' first-token tops. */
function forwarding(round: number, localTop: number, forwardedTop: number, forwardedOk = 200): LoadRow {
  return {
    ...row("forwarding", "stream", round, { rps: 300 }),
    groups: { local: group(100, localTop), forwarded: group(forwardedOk, forwardedTop) },
  };
}

function row(
  target: string,
  mode: LoadRow["mode"],
  round: number,
  o: { rps: number; ftP99?: number; ok?: number },
): LoadRow {
  const ft = o.ftP99 ?? 10;
  return {
    target,
    mode,
    round,
    concurrency: 256,
    ok: o.ok ?? 100,
    errors: 0,
    requestsPerS: o.rps,
    latencyMs: { p50: 5, p99: 20 },
    ttfbMs: { p50: 2, p99: 8 },
    ...(mode === "stream" ? { firstTokenMs: { p50: ft / 2, p99: ft }, interChunkMs: { p50: 1, p99: 3 } } : {}),
    cpuPercent: { "bench process (A, one node)": 50, B: 10, C: 10 },
  };
}

/** Three rounds; `ft` and `rps` give each round's forwarded first-token top (local: 10) and 3-node streaming req/s. */
function rounds(ft: number[], rps: number[], okForwarded = [200, 200, 200]): LoadRow[] {
  return ft.flatMap((f, i) => [
    forwarding(i, 10, f, okForwarded[i]),
    row("one node", "stream", i, { rps: 100 }),
    row("3 nodes", "stream", i, { rps: rps[i]! }),
    row("one node", "json", i, { rps: 200 }),
    row("3 nodes", "json", i, { rps: 190 }),
  ]);
}

describe("cluster benchmark report", () => {
  it("pools the forwarding cell's rounds and judges throughput on the median of the per-round pairs", () => {
    const r = clusterReport(rounds([12, 13, 14], [95, 50, 92]), PARAMS);
    const byName = new Map(r.targets.map((t) => [t.name.replace(/,.*$/, ""), t]));
    // Pooled: local samples top at 10 ms, forwarded at 14 (600 samples, p99 just under the top) → about 4 ms.
    const added = byName.get("added first-token p99")!;
    assert.ok(added.value > 3.5 && added.value < 4.2, String(added.value));
    assert.equal(added.met, true);
    // Streaming ratio per round 0.95, 0.5, 0.92 → 0.92 (met); non-streaming 0.95 every round (met).
    assert.equal(byName.get("streaming throughput 3 nodes ÷ one node")!.value, 0.92);
    assert.equal(byName.get("non-streaming throughput 3 nodes ÷ one node")!.value, 0.95);
    assert.ok(r.targets.filter((t) => !t.name.includes("design brief")).every((t) => t.met));
    // 600 forwarded requests over 3 rounds of 1 s: 200 req/s.
    assert.match(r.markdown, /\| forwarding \(one cell\) \| streaming \| forwarded \| 200 \|/);
    assert.ok(!JSON.stringify(r.data).includes('firstTokenMs":[1,'), "raw samples stay out of the results");
    assert.match(r.markdown, /coordinators' CPU ms \/ request/);
  });

  it("misses a target when one side completed no request in some round, and when it is over the bound", () => {
    const starved = clusterReport(rounds([12, 12, 12], [95, 95, 95], [200, 0, 200]), PARAMS);
    const added = starved.targets.find((t) => t.name.startsWith("added first-token p99"))!;
    assert.ok(Number.isNaN(added.value));
    assert.equal(added.met, false);
    const slow = clusterReport(rounds([16, 16, 16], [80, 80, 80]), PARAMS);
    assert.equal(slow.targets.find((t) => t.name.startsWith("added first-token p99"))!.met, false);
    assert.equal(slow.targets.find((t) => t.name.startsWith("streaming throughput"))!.met, false);
  });

  it("shows the brief's median bound missed when only the local side's tail keeps the p99 bound met", () => {
    // Forwarded samples 51..70 ms, local 1..100 ms: forwarded p99 far below local's, but its median 10 ms above.
    const fwd = (round: number): LoadRow => ({
      ...row("forwarding", "stream", round, { rps: 300 }),
      groups: {
        local: {
          ok: 100,
          firstTokenMs: Array.from({ length: 100 }, (_, i) => i + 1),
          latencyMs: [1],
          interChunkMs: [1],
        },
        forwarded: {
          ok: 20,
          firstTokenMs: Array.from({ length: 20 }, (_, i) => 51 + i),
          latencyMs: [1],
          interChunkMs: [1],
        },
      },
    });
    const all = [...[0, 1, 2].map(fwd), ...rounds([10, 10, 10], [95, 95, 95]).filter((x) => x.target !== "forwarding")];
    const t = (prefix: string) => clusterReport(all, PARAMS).targets.find((x) => x.name.startsWith(prefix))!;
    assert.equal(t("added first-token p99").met, true);
    assert.equal(t("added first-token p50").met, false);
    assert.equal(t("added first-token p50").value, 10);
  });

  it("reports the lone nodes as a reference: splitting the machine, and the cluster's own cost", () => {
    const lone = (round: number, mode: LoadRow["mode"], rps: number): LoadRow => ({
      ...row("3 lone nodes", mode, round, { rps }),
      cpuPercent: { "bench process (A, one node)": 30, "lone B": 30, "lone C": 30 },
    });
    // Streaming: one node 100, cluster 95 / 50 / 92, lone 100 / 80 / 92 → lone ÷ one 1 / 0.8 / 0.92 (median 0.92),
    // cluster ÷ lone 0.95 / 0.625 / 1 (median 0.95). Non-streaming: 190 ÷ 200 every round, lone 95 every round.
    const all = [
      ...rounds([12, 13, 14], [95, 50, 92]),
      ...[0, 1, 2].flatMap((i) => [lone(i, "stream", [100, 80, 92][i]!), lone(i, "json", 190)]),
    ];
    const r = clusterReport(all, PARAMS);
    assert.match(r.markdown, /3 lone nodes ÷ one node, streaming \/ non-streaming[^|]*\| 0\.92× \/ 0\.95× \|/);
    assert.match(r.markdown, /3 nodes ÷ 3 lone nodes, streaming \/ non-streaming[^|]*\| 0\.95× \/ 1× \|/);
    // The lone children's CPU counts as coordinators' CPU: 90 % of a core over 190 req/s is 4.74 ms per request.
    assert.match(r.markdown, /\| non-streaming \| 3 lone nodes \|[^\n]*\| 4\.74 \|/);
    // A reference, not a target: the targets are unchanged.
    assert.equal(r.targets.filter((t) => t.name.includes("lone")).length, 0);
    // Without the lone cell the reference rows are left out.
    assert.doesNotMatch(clusterReport(rounds([12, 13, 14], [95, 50, 92]), PARAMS).markdown, /lone/);
  });

  it("lets one slow round's tail count in the pool instead of being outvoted by the median", () => {
    // Two clean rounds and one with a 40 ms forwarded tail: pooled p99 sees it (over 5 ms: not met).
    const r = clusterReport(rounds([12, 40, 12], [95, 95, 95]), PARAMS);
    assert.equal(r.targets.find((t) => t.name.startsWith("added first-token p99"))!.met, false);
  });
});

describe("load generator first-token clock", () => {
  it("starts at the first event carrying content, even split across reads, and times the gaps after it", () => {
    const t = new StreamTimer();
    t.read('data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n', 3);
    assert.equal(t.firstTokenMs, 0, "the role-only opening event is not a token");
    t.read('data: {"choices":[{"delta":{"cont', 5);
    assert.equal(t.firstTokenMs, 0);
    t.read('ent":"Hello"}}]}\n\n', 7);
    assert.equal(t.firstTokenMs, 7);
    t.read('data: {"choices":[{"delta":{"content":" world"}}]}\n\n', 9.5);
    t.read("data: [DONE]\n\n", 10);
    assert.deepEqual(t.gaps, [2.5, 0.5]);
  });
});
