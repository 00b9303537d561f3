import assert from "node:assert/strict";
import { renderHtml } from "../../../../src/tools/loadtest/html-report.js";
import { parseLoadtestOptions, type LoadtestOptions } from "../../../../src/tools/loadtest/options.js";
import {
  buildReport,
  formatPercent,
  renderMarkdown,
  renderMarkdownTable,
  summarizeCell,
} from "../../../../src/tools/loadtest/report.js";
import type { CellResult, RequestRecord } from "../../../../src/tools/loadtest/types.js";

function rec(seq: number, over: Partial<RequestRecord>): RequestRecord {
  return {
    seq,
    worker: 0,
    startMs: 1_000 + seq,
    ttfbMs: 10,
    ttftMs: 12,
    latencyMs: 100,
    status: 200,
    ok: true,
    promptTokens: 5,
    completionTokens: 50,
    tokensSource: "usage",
    errorClass: null,
    errorCode: null,
    errorMessage: null,
    ...over,
  };
}

const cell: CellResult = {
  maxTokens: 512,
  concurrency: 4,
  startedAtMs: 1_000,
  wallMs: 2_000,
  requests: [
    rec(0, { latencyMs: 100, ttfbMs: 10 }),
    rec(1, { latencyMs: 200, ttfbMs: 20 }),
    rec(2, { latencyMs: 300, ttfbMs: 30 }),
    rec(3, { latencyMs: 400, ttfbMs: 40 }),
    rec(4, {
      latencyMs: 5,
      ttfbMs: null,
      ttftMs: null,
      status: 503,
      ok: false,
      completionTokens: 0,
      errorClass: "billing_503",
    }),
    rec(5, {
      latencyMs: 5,
      ttfbMs: null,
      ttftMs: null,
      status: 503,
      ok: false,
      completionTokens: 0,
      errorClass: "billing_503",
    }),
    rec(6, { latencyMs: 300, status: null, ok: false, completionTokens: 0, errorClass: "client_timeout" }),
  ],
  correlations: [],
};

const options = (
  parseLoadtestOptions(["--requests", "7", "--api-key", "secret-key"], {}) as { options: LoadtestOptions }
).options;

describe("loadtest report", () => {
  it("summarizes a cell: percentiles over successes, error rate, classes and cluster tok/s", () => {
    const s = summarizeCell(cell);
    assert.equal(s.requests, 7);
    assert.equal(s.errors, 3);
    assert.equal(s.errorRate, 3 / 7);
    assert.equal(s.latencyP50Ms, 250);
    assert.equal(s.latencyP95Ms, 385);
    assert.equal(s.ttfbP50Ms, 25);
    assert.deepEqual(s.errorsByClass, { billing_503: 2, client_timeout: 1 });
    assert.equal(s.completionTokens, 200);
    assert.equal(s.clusterTokPerS, 100);
  });

  it("formats error percentages like Appendix A", () => {
    assert.equal(formatPercent(0), "0%");
    assert.equal(formatPercent(52 / 249), "20.9%");
    assert.equal(formatPercent(0.5), "50%");
    assert.equal(formatPercent(1), "100%");
  });

  it("renders a well-formed Markdown table with one row per cell", () => {
    const table = renderMarkdownTable([
      summarizeCell(cell),
      summarizeCell({ ...cell, concurrency: 8, requests: [rec(0, {})] }),
    ]);
    const lines = table.trim().split("\n");
    assert.equal(lines.length, 4);
    for (const l of lines) assert.equal(l.split("|").length, 10, l);
    assert.equal(
      lines[2],
      "| 512 | 4 | 7 | 42.9% | 250ms / 385ms | 25ms / 39ms | 100 | billing_503 ×2, client_timeout ×1 |",
    );
    assert.equal(lines[3], "| 512 | 8 | 1 | 0% | 100ms / 100ms | 10ms / 10ms | 25 | — |");
  });

  it("never writes the API key and lists each error class once", () => {
    const report = buildReport({
      options,
      model: "m",
      startedAtMs: 0,
      finishedAtMs: 1,
      cells: [cell],
      capacity: { available: false, samples: [] },
    });
    assert.equal(report.options.apiKey, "set");
    assert.doesNotMatch(JSON.stringify(report), /secret-key/);
    const md = renderMarkdown(report);
    assert.equal(md.match(/`ratelimit_429` =/g)?.length, 1);
    assert.match(md, /`http_4xx` = any other status/);
  });

  it("escapes model names in the HTML and writes one line, not an empty chart, when nothing failed", () => {
    const clean: CellResult = { ...cell, requests: [rec(0, {})] };
    const report = buildReport({
      options,
      model: "<b>m&m</b>",
      startedAtMs: 0,
      finishedAtMs: 1,
      cells: [clean],
      capacity: { available: true, samples: [] },
    });
    const html = renderHtml(report);
    assert.ok(!html.includes("<b>m&m</b>"));
    assert.ok(html.includes("&lt;b&gt;m&amp;m&lt;/b&gt;"));
    assert.match(html, /<p class="nodata"><span class="nodata-title">Errors by class per cell<\/span>: no errors<\/p>/);
    assert.match(html, /<p class="nodata">[^\n]*: no capacity samples<\/p>/);
    // Latency over time, two box plots, one cell histogram, throughput.
    assert.equal(html.match(/<svg/g)?.length, 5);
  });
});
