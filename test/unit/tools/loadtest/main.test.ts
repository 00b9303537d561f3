import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runLoadtestCli } from "../../../../src/tools/loadtest/main.js";
import type { LoadtestReport } from "../../../../src/tools/loadtest/report.js";
import { closedPort, startFakeServer, type FakeBehavior, type FakeServer } from "./fake-openai-server.js";

class Capture {
  text = "";
  isTTY = false;
  write(s: string) {
    this.text += s;
    return true;
  }
}

// Requests with max_tokens 32 fail on command by arrival index; the cells run one after another, so the first
// six arrivals belong to the 32×1 cell and the next six to the 32×2 cell.
const plan32: FakeBehavior[] = [
  "billing_503",
  "ratelimit_429",
  "capacity_429",
  "in_band",
  "stall",
  "ok",
  "pool_exhausted_429",
  "dispatch_502",
  "ok",
  "ok",
  "ok",
  "ok",
];

describe("coordinator loadtest against a fake OpenAI-compatible server", () => {
  let server: FakeServer;
  let out: string;
  let report: LoadtestReport;
  let markdown: string;
  let html: string;
  const stdout = new Capture();
  const stderr = new Capture();
  let code: number;

  before(async () => {
    server = await startFakeServer({ plan: (maxTokens, i) => (maxTokens === 32 ? (plan32[i] ?? "ok") : "ok") });
    out = await mkdtemp(join(tmpdir(), "loadtest-"));
    code = await runLoadtestCli(
      [
        "--base-url",
        server.baseUrl,
        "--api-key",
        "sk-test",
        "--max-tokens",
        "16,32",
        "--concurrency",
        "1,2",
        "--requests",
        "6",
        "--timeout",
        "300ms",
        "--sample-interval",
        "40ms",
        "--out",
        out,
        "--no-progress",
      ],
      {},
      { stdout, stderr },
    );
    const files = await readdir(out);
    const base = files.find((f) => f.endsWith(".json"))!.replace(/\.json$/, "");
    report = JSON.parse(await readFile(join(out, `${base}.json`), "utf8")) as LoadtestReport;
    markdown = await readFile(join(out, `${base}.md`), "utf8");
    html = await readFile(join(out, `${base}.html`), "utf8");
  });

  after(async () => {
    await server.close();
    await rm(out, { recursive: true, force: true });
  });

  it("exits 0, uses the first listed model and writes the three files", async () => {
    assert.equal(code, 0, stderr.text);
    assert.equal(report.model, "fake-model");
    assert.equal((await readdir(out)).filter((f) => /^loadtest-.*\.(md|json|html)$/.test(f)).length, 3);
  });

  it("sends streaming requests with usage, max_tokens and the key", () => {
    const body = server.bodies[0]!;
    assert.equal(body.stream, true);
    assert.deepEqual(body.stream_options, { include_usage: true });
    assert.equal(body.model, "fake-model");
  });

  it("runs the requested number of requests in every cell, in matrix order", () => {
    assert.deepEqual(
      report.cells.map((c) => [c.maxTokens, c.concurrency, c.requests, c.requestRecords.length]),
      [
        [16, 1, 6, 6],
        [16, 2, 6, 6],
        [32, 1, 6, 6],
        [32, 2, 6, 6],
      ],
    );
    assert.equal(server.chatRequests, 24);
  });

  it("counts every error class in the right cell", () => {
    const byCell = report.cells.map((c) => c.errorsByClass);
    assert.deepEqual(byCell[0], {});
    assert.deepEqual(byCell[1], {});
    assert.deepEqual(byCell[2], {
      billing_503: 1,
      ratelimit_429: 1,
      capacity_429: 1,
      in_band_error: 1,
      client_timeout: 1,
    });
    assert.deepEqual(byCell[3], { pool_exhausted_429: 1, dispatch_503: 1 });
    assert.equal(report.cells[2]!.errorRate, 5 / 6);
  });

  it("prefers the usage chunk over counted deltas and computes cluster tok/s from wall time", () => {
    const c = report.cells[0]!;
    assert.ok(c.requestRecords.every((r) => r.ok && r.tokensSource === "usage" && r.completionTokens === 8));
    assert.equal(c.completionTokens, 48);
    assert.ok(Math.abs(c.clusterTokPerS - 48 / (c.wallMs / 1000)) < 1e-6);
    assert.ok(c.latencyP50Ms! > 0 && c.latencyP50Ms! <= c.latencyP95Ms!);
    assert.ok(c.ttfbP50Ms! > 0 && c.ttfbP50Ms! <= c.latencyP50Ms!);
    assert.ok(c.ttftP50Ms! >= c.ttfbP50Ms!);
  });

  it("records the timeout as a client timeout after about the configured time", () => {
    const r = report.cells[2]!.requestRecords.find((x) => x.errorClass === "client_timeout")!;
    assert.equal(r.status, 200);
    assert.ok(r.latencyMs >= 290 && r.latencyMs < 2000, String(r.latencyMs));
  });

  it("stores the capacity samples and pairs every error with a snapshot", () => {
    assert.equal(report.capacity.available, true);
    const ok = report.capacity.samples.filter((s) => s.kind === "ok");
    assert.ok(ok.length >= 2, `only ${ok.length} samples`);
    assert.equal(report.errorCorrelations.length, 7);
    for (const e of report.errorCorrelations) {
      assert.equal(e.snapshot, "ok");
      assert.equal(e.modelRow?.id, "fake-model");
      assert.equal(typeof e.modelRow?.warm_providers, "number");
      assert.ok(report.capacity.samples[e.sampleIndex!]!.atMs <= e.atMs);
    }
  });

  it("prints the Markdown table with the Appendix A columns and one row per cell", () => {
    const lines = stdout.text.trim().split("\n");
    assert.equal(
      lines[0],
      "| max_tok | conc | reqs | err% | latency p50/p95 | TTFB p50/p95 | cluster tok/s | errors |",
    );
    assert.match(lines[1]!, /^\|( *:?-+:? *\|){8}$/);
    assert.equal(lines.length, 2 + 4);
    const row = lines[4]!.split("|").map((s) => s.trim());
    assert.deepEqual(row.slice(1, 5), ["32", "1", "6", "83.3%"]);
    assert.equal(row[8], "billing_503 ×1, ratelimit_429 ×1, capacity_429 ×1, in_band_error ×1, client_timeout ×1");
    assert.equal(lines[2]!.split("|").map((s) => s.trim())[8], "—");
    assert.ok(markdown.includes(stdout.text.trim()));
  });

  it("writes an HTML report with a chart in every section and no external URLs", () => {
    const sections = html.split("<section>").slice(1);
    assert.equal(sections.length, 5);
    for (const s of sections.slice(1)) assert.ok(s.includes("<svg"), s.slice(0, 80));
    assert.ok(html.startsWith("<!doctype html>"));
    assert.doesNotMatch(html, /https?:\/\//);
    assert.doesNotMatch(html, /<script|<link|src=|href=|url\(/i);
    assert.ok(html.includes("fake-model: warm / cold providers"));
    assert.ok(html.includes("billing_503"));
  });
});

describe("coordinator loadtest edge cases", () => {
  let server: FakeServer;
  let out: string;

  before(async () => {
    server = await startFakeServer({ capacity: false });
    out = await mkdtemp(join(tmpdir(), "loadtest-"));
  });

  after(async () => {
    await server.close();
    await rm(out, { recursive: true, force: true });
  });

  it("records an unavailable capacity endpoint and shows progress lines", async () => {
    const stdout = new Capture();
    const stderr = new Capture();
    const code = await runLoadtestCli(
      [
        "--base-url",
        server.baseUrl,
        "--model",
        "m1",
        "--max-tokens",
        "8",
        "--concurrency",
        "2",
        "--duration",
        "150ms",
        "--out",
        out,
      ],
      {},
      { stdout, stderr },
    );
    assert.equal(code, 0);
    const json = (await readdir(out)).find((f) => f.endsWith(".json"))!;
    const report = JSON.parse(await readFile(join(out, json), "utf8")) as LoadtestReport;
    assert.equal(report.model, "m1");
    assert.equal(report.capacity.available, false);
    assert.deepEqual(
      report.capacity.samples.map((s) => s.kind),
      ["unavailable"],
    );
    assert.ok(report.cells[0]!.requests >= 2);
    assert.ok(report.cells[0]!.wallMs >= 150);
    assert.match(stderr.text, /^8x2 +\[#+\] \d+ done err 0 p50 /m);
    const html = await readFile(join(out, json.replace(/json$/, "html")), "utf8");
    assert.ok(html.includes("capacity endpoint unavailable (404)"));
  });

  it("exits 2 with a clear message for invalid options", async () => {
    const stderr = new Capture();
    assert.equal(await runLoadtestCli(["--concurrency", "zero"], {}, { stdout: new Capture(), stderr }), 2);
    assert.match(stderr.text, /loadtest: --concurrency: expected a positive integer/);
  });

  it("prints usage for --help", async () => {
    const stdout = new Capture();
    assert.equal(await runLoadtestCli(["--help"], {}, { stdout, stderr: new Capture() }), 0);
    assert.match(stdout.text, /Usage: coordinator loadtest/);
  });

  it("exits 1 when the target is unreachable", async () => {
    const stderr = new Capture();
    const code = await runLoadtestCli(
      ["--base-url", `http://127.0.0.1:${await closedPort()}/v1`, "--out", out],
      {},
      { stdout: new Capture(), stderr },
    );
    assert.equal(code, 1);
    assert.match(stderr.text, /cannot choose a model from .*: ECONNREFUSED/);
  });
});
