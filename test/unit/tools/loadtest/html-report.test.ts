import assert from "node:assert/strict";
import { cellLabel, renderHtml } from "../../../../src/tools/loadtest/html-report.js";
import { parseLoadtestOptions, type LoadtestOptions } from "../../../../src/tools/loadtest/options.js";
import { buildReport, type LoadtestReport } from "../../../../src/tools/loadtest/report.js";
import { axisTicks, formatCount, formatDurationTick } from "../../../../src/tools/loadtest/axis-ticks.js";
import { timeChart } from "../../../../src/tools/loadtest/time-chart.js";
import type { CapacitySample, CellResult, RequestRecord } from "../../../../src/tools/loadtest/types.js";

const options = (
  parseLoadtestOptions(["--requests", "20", "--max-tokens", "256,1024", "--concurrency", "4"], {}) as {
    options: LoadtestOptions;
  }
).options;
const t0 = Date.parse("2025-06-01T12:00:00Z");

function rec(seq: number, startMs: number, over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    seq,
    worker: seq % 4,
    startMs,
    ttfbMs: 80 + seq,
    ttftMs: 100 + 10 * seq,
    latencyMs: 1_000 + 150 * seq,
    status: 200,
    ok: true,
    promptTokens: 20,
    completionTokens: 100,
    tokensSource: "usage",
    errorClass: null,
    errorCode: null,
    errorMessage: null,
    ...over,
  };
}

function cellOf(maxTokens: number, startedAtMs: number, requests: RequestRecord[]): CellResult {
  const end = Math.max(startedAtMs + 1, ...requests.map((r) => r.startMs + r.latencyMs));
  return { maxTokens, concurrency: 4, startedAtMs, wallMs: end - startedAtMs, requests, correlations: [] };
}

/** The catalog lists five models; the run tested one of them. The second cell has failures. */
const catalog = ["served-a", "idle-b", "idle-c", "<script>alert(1)</script>", "tested-model"];

function syntheticReport(over: { cells?: CellResult[]; samples?: CapacitySample[] } = {}): LoadtestReport {
  const c1 = cellOf(
    256,
    t0,
    Array.from({ length: 20 }, (_, i) => rec(i, t0 + i * 200)),
  );
  const c2Start = c1.startedAtMs + c1.wallMs + 100;
  const c2 = cellOf(
    1024,
    c2Start,
    Array.from({ length: 20 }, (_, i) =>
      i % 5 === 0
        ? rec(i, c2Start + i * 200, {
            ok: false,
            status: 429,
            ttfbMs: null,
            ttftMs: null,
            latencyMs: 30,
            completionTokens: 0,
            errorClass: "capacity_429",
          })
        : rec(i, c2Start + i * 200, { latencyMs: 4_000 + 300 * i }),
    ),
  );
  const cells = over.cells ?? [c1, c2];
  const end = Math.max(...cells.map((c) => c.startedAtMs + c.wallMs));
  const samples: CapacitySample[] =
    over.samples ??
    Array.from({ length: 8 }, (_, i) => ({
      kind: "ok" as const,
      index: i,
      atMs: t0 + i * 3_000,
      models: catalog.map((id, k) => ({
        id,
        warm_providers: k + 1,
        cold_providers: 1,
        queued_requests: id === "tested-model" ? i % 3 : 0,
      })),
    }));
  return buildReport({
    options,
    model: "tested-model",
    startedAtMs: t0,
    finishedAtMs: end,
    cells,
    capacity: { available: true, samples },
  });
}

/** Each `<svg>…</svg>` of the page. */
const charts = (html: string) => html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
const titleOf = (svg: string) => /<title>([^<]*)<\/title>/.exec(svg)![1]!;
const texts = (fragment: string) => [...fragment.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);

describe("loadtest HTML report", () => {
  const report = syntheticReport();
  const html = renderHtml(report);
  const svgs = charts(html);

  it("marks each cell as a labelled band in every time-series chart", () => {
    const timeCharts = svgs.filter((s) => s.includes("seconds since the start of the run"));
    assert.equal(timeCharts.length, 2, "latency over time and providers over time");
    for (const svg of timeCharts) {
      const bands = [...svg.matchAll(/<g class="cell-band" data-cell="([^"]*)">([\s\S]*?)<\/g>/g)];
      assert.deepEqual(
        bands.map((b) => b[1]),
        ["256×4", "1024×4"],
        titleOf(svg),
      );
      for (const b of bands) {
        assert.ok(texts(b[2]!).includes(b[1]!), `band ${b[1]} shows its label`);
        assert.match(b[2]!, /<rect /, "band is shaded");
        assert.match(b[2]!, /<line /, "band start is a boundary line");
      }
    }
  });

  it("places the bands where the cells ran, in order and without overlap", () => {
    const svg = svgs.find((s) => titleOf(s).includes("end-to-end latency of each request"))!;
    const rects = [
      ...svg.matchAll(/<g class="cell-band"[^>]*><title>[^<]*<\/title><rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/g),
    ].map((m) => [Number(m[1]), Number(m[2])] as const);
    assert.equal(rects.length, 2);
    assert.ok(rects[0]![0] + rects[0]![1] <= rects[1]![0] + 0.2, JSON.stringify(rects));
  });

  it("charts only the model under test, not the rest of the catalog", () => {
    for (const other of catalog.filter((m) => m !== "tested-model")) {
      assert.ok(!html.includes(other), `${other} appears in the report`);
    }
    assert.ok(!html.includes("&lt;script&gt;"), "not even escaped");
    const providers = svgs.filter((s) => titleOf(s).includes("warm / cold providers"));
    assert.deepEqual(providers.map(titleOf), ["tested-model: warm / cold providers and queued requests"]);
    const legend = /<g class="legend">([\s\S]*?)<\/g>/.exec(providers[0]!)![1]!;
    assert.deepEqual(texts(legend), ["warm providers", "cold providers", "queued requests"]);
  });

  it("draws one latency distribution chart per cell, with first-token and end-to-end panels", () => {
    const perCell = svgs.filter((s) => titleOf(s).startsWith("Cell "));
    assert.deepEqual(perCell.map(titleOf), [
      "Cell 256×4: max_tokens 256, concurrency 4",
      "Cell 1024×4: max_tokens 1024, concurrency 4",
    ]);
    for (const svg of perCell) {
      const panels = svg.split('<g class="panel">').slice(1);
      assert.equal(panels.length, 2);
      assert.ok(texts(panels[0]!).includes("first token"));
      assert.ok(texts(panels[1]!).includes("end-to-end"));
    }
    // The histogram counts every successful request: 20 in the first cell, 16 in the second.
    const counted = perCell.map((svg) =>
      svg
        .split('<g class="panel">')
        .slice(1)
        .map((p) =>
          [...p.matchAll(/<rect class="mark"[^>]*><title>[^<]*: (\d+)<\/title>/g)].reduce(
            (a, m) => a + Number(m[1]),
            0,
          ),
        ),
    );
    assert.deepEqual(counted, [
      [20, 20],
      [16, 16],
    ]);
    const boxes = svgs.filter((s) => / latency per cell$/.test(titleOf(s)));
    assert.deepEqual(boxes.map(titleOf), ["First-token latency per cell", "End-to-end latency per cell"]);
    for (const b of boxes) assert.equal(b.match(/<g class="mark">/g)?.length, 2);
  });

  it("repeats no label on any axis and no text outside the axes of a chart", () => {
    for (const svg of svgs) {
      const axes = [...svg.matchAll(/<g class="axis [xy]">([\s\S]*?)<\/g>/g)].map((m) => texts(m[1]!));
      assert.ok(axes.length >= 2, titleOf(svg));
      for (const labels of axes)
        assert.equal(new Set(labels).size, labels.length, `${titleOf(svg)}: ${labels.join(" | ")}`);
      const outside = texts(svg.replace(/<g class="axis [xy]">[\s\S]*?<\/g>/g, "").replace(/<g class="panel">/g, ""));
      const dup = outside.filter((t, i) => outside.indexOf(t) !== i && !/^p50 .* n=\d+$/.test(t));
      assert.deepEqual(dup, [], titleOf(svg));
    }
  });

  it("draws no chart without data marks, and says 'no data' in one line instead", () => {
    for (const svg of svgs) assert.match(svg, /class="mark"/, titleOf(svg));
    // A model under test absent from every capacity sample, and a cell where every request failed.
    const failing = cellOf(64, t0, [
      rec(0, t0, {
        ok: false,
        status: 503,
        ttfbMs: null,
        ttftMs: null,
        latencyMs: 5,
        completionTokens: 0,
        errorClass: "billing_503",
      }),
    ]);
    const other = syntheticReport({
      cells: [failing],
      samples: [{ kind: "ok", index: 0, atMs: t0, models: [{ id: "idle-b", warm_providers: 2 }] }],
    });
    const page = renderHtml(other);
    for (const svg of charts(page)) assert.match(svg, /class="mark"/, titleOf(svg));
    assert.match(
      page,
      /<p class="nodata"><span class="nodata-title">tested-model: warm \/ cold providers and queued requests<\/span>: not in any capacity sample<\/p>/,
    );
    assert.match(
      page,
      /<p class="nodata"><span class="nodata-title">Cell 64×4: max_tokens 64, concurrency 4<\/span>: no successful requests \(1 sent\)<\/p>/,
    );
    assert.match(page, /<p class="nodata"><span class="nodata-title">Cluster tok\/s[^<]*<\/span>: no data<\/p>/);
    assert.ok(!page.includes("idle-b"));
  });

  it("keeps the page self-contained and escapes every server string", () => {
    assert.doesNotMatch(html, /https?:\/\//);
    assert.doesNotMatch(html, /<script|<link|src=|href=|url\(/i);
    const hostile = syntheticReport();
    hostile.model = `"><img onerror=x>`;
    hostile.cells[0]!.errorsByClass = { ["<i>x</i>" as "network"]: 1 };
    const page = renderHtml(hostile);
    assert.ok(!page.includes("<img") && !page.includes("<i>x</i>"));
    assert.ok(page.includes("&quot;&gt;&lt;img onerror=x&gt;"));
  });

  it("labels cells max_tokens×concurrency in the summary table too", () => {
    assert.equal(cellLabel({ maxTokens: 512, concurrency: 8 }), "512×8");
    assert.match(html, /<tr><td class="l">256×4<\/td><td>256<\/td><td>4<\/td>/);
  });
});

describe("loadtest chart axes", () => {
  it("uses 1-2-5 steps whose labels are distinct, for counts and durations", () => {
    for (const max of [1, 2, 3, 7, 10, 0.3, 37, 1_234, 86_400]) {
      const integer = axisTicks(max, { integer: true });
      const labels = integer.ticks.map((v) => formatCount(v, integer.step));
      assert.equal(new Set(labels).size, labels.length, `${max}: ${labels.join(",")}`);
      assert.ok(integer.top >= max && integer.step >= 1);
      const ms = axisTicks(max * 97);
      const dl = ms.ticks.map((v) => formatDurationTick(v, ms.step));
      assert.equal(new Set(dl).size, dl.length, `${max * 97}ms: ${dl.join(",")}`);
    }
    assert.deepEqual(axisTicks(2, { integer: true }).ticks, [0, 1, 2]);
    assert.deepEqual(
      axisTicks(1_700).ticks.map((v) => formatDurationTick(v, 500)),
      ["0", "500ms", "1.0s", "1.5s", "2.0s"],
    );
  });

  it("a time chart with no points at all is one line of text", () => {
    const out = timeChart({
      title: "T",
      t0,
      bands: [{ label: "a", startMs: t0, endMs: t0 + 1 }],
      lines: [{ name: "x", color: "#000", points: [] }],
      formatY: formatCount,
      emptyText: "nothing",
    });
    assert.equal(out, '<p class="nodata"><span class="nodata-title">T</span>: nothing</p>');
  });
});
