/**
 * `coordinator loadtest` end to end: a real coordinator with simulated Macs over gRPC and real Postgres, the
 * CLI entry point run against it with only a base URL and a key, and the three reports checked; the HTML report
 * is rendered by headless Chromium and the screenshot checked for drawn content.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inflateSync } from "node:zlib";
import { runLoadtestCli } from "../../../src/tools/loadtest/main.js";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";

const CHROMIUM_CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** Captures what the CLI writes. */
function sink() {
  let text = "";
  return {
    write: (s: string) => void (text += s),
    get text() {
      return text;
    },
  };
}

/** Runs headless Chromium to screenshot `htmlFile`; rejects on a non-zero exit or after `timeoutMs`. */
function screenshot(
  chromium: string,
  htmlFile: string,
  png: string,
  profileDir: string,
  timeoutMs = 30_000,
): Promise<void> {
  const args = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    `--user-data-dir=${profileDir}`,
    `--screenshot=${png}`,
    "--window-size=1200,2000",
    `file://${htmlFile}`,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(chromium, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-2000)));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`chromium did not finish within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`chromium exited ${code}: ${stderr}`));
    });
  });
}

/** Width, height and the inflated scanlines of a PNG (no interlace support needed for Chromium's output). */
function decodePng(buf: Buffer): { width: number; height: number; pixels: Buffer } {
  assert.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "PNG signature");
  let off = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString("ascii", off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
    } else if (type === "IDAT") idat.push(data);
    off += 12 + len;
  }
  return { width, height, pixels: inflateSync(Buffer.concat(idat)) };
}

describe("coordinator loadtest against a real coordinator (reports, HTML rendered in headless Chromium)", function () {
  this.timeout(90_000);
  let t: TestCoordinator;
  let dir: string;

  before(async () => {
    t = await startTestCoordinator({ tier: "service" });
    dir = await mkdtemp(join(tmpdir(), "loadtest-e2e-"));
  });
  after(async () => {
    await t?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("runs the burst matrix, writes the Markdown table, JSON and HTML reports, and the HTML renders with its charts", async () => {
    const out = join(dir, "out");
    const stdout = sink();
    const stderr = sink();
    const code = await runLoadtestCli(
      [
        "--base-url",
        t.apiBase,
        "--api-key",
        t.apiKey,
        "--max-tokens",
        "64,128",
        "--concurrency",
        "2,4",
        "--requests",
        "8",
        "--out",
        out,
        "--no-progress",
      ],
      {},
      { stdout, stderr },
    );
    assert.equal(code, 0, stderr.text);

    // The table printed on stdout: one row per (max_tokens, concurrency) cell, every request successful.
    const rows = stdout.text.split("\n").filter((l) => /^\|\s*(64|128)\s*\|/.test(l));
    assert.equal(rows.length, 4, stdout.text);
    assert.match(stdout.text, /\|\s*max_tok\s*\|\s*conc\s*\|\s*reqs\s*\|\s*err%/);

    const files = (await readdir(out)).sort();
    assert.equal(files.length, 3, files.join(", "));
    const md = files.find((f) => f.endsWith(".md"))!;
    const json = files.find((f) => f.endsWith(".json"))!;
    const html = files.find((f) => f.endsWith(".html"))!;
    assert.ok(md && json && html, files.join(", "));
    assert.match(md, /^loadtest-.*\.md$/);

    const markdown = await readFile(join(out, md), "utf8");
    for (const row of rows) assert.ok(markdown.includes(row.trim()), `markdown report has the row ${row}`);

    const report = JSON.parse(await readFile(join(out, json), "utf8")) as {
      tool: string;
      model: string;
      options: { apiKey: string };
      cells: {
        maxTokens: number;
        concurrency: number;
        requests: number;
        errors: number;
        completionTokens: number;
        latencyP50Ms: number | null;
        requestRecords: unknown[];
      }[];
      capacity: { available: boolean; samples: unknown[] };
    };
    assert.equal(report.tool, "coordinator loadtest");
    assert.equal(report.model, "gpt-oss-20b");
    assert.equal(report.options.apiKey, "set", "the key itself is never written to the report");
    assert.ok(!JSON.stringify(report).includes(t.apiKey));
    assert.deepEqual(
      report.cells.map((c) => [c.maxTokens, c.concurrency]),
      [
        [64, 2],
        [64, 4],
        [128, 2],
        [128, 4],
      ],
    );
    for (const c of report.cells) {
      assert.equal(c.requests, 8);
      assert.equal(c.errors, 0, `cell ${c.maxTokens}x${c.concurrency} had errors`);
      assert.equal(c.requestRecords.length, 8);
      assert.ok(
        c.completionTokens > 0 && c.completionTokens <= 8 * c.maxTokens,
        `completion tokens ${c.completionTokens}`,
      );
      assert.ok(c.latencyP50Ms !== null && c.latencyP50Ms > 0);
    }
    assert.equal(report.capacity.available, true, "GET /v1/models/capacity was sampled");
    assert.ok(report.capacity.samples.length >= 1);

    const page = await readFile(join(out, html), "utf8");
    // Latency over time, providers over time, two box plots, four per-cell histograms, throughput.
    assert.ok((page.match(/<svg/g) ?? []).length >= 9, "latency, distribution, throughput and provider charts");
    assert.match(page, /End-to-end latency per cell/);
    assert.equal(
      (page.match(/<g class="cell-band" data-cell="(64|128)×(2|4)">/g) ?? []).length,
      8,
      "four cells banded in both time charts",
    );
    assert.match(page, /Cluster tok\/s/);

    const chromium = CHROMIUM_CANDIDATES.find((p) => existsSync(p));
    assert.ok(
      chromium,
      "chromium is not installed: run `apt-get install -y chromium` (needed to render the HTML report)",
    );
    const png = join(dir, "report.png");
    await screenshot(chromium, join(out, html), png, join(dir, "chromium-profile"));
    const size = (await stat(png)).size;
    assert.ok(size > 20_000, `screenshot is only ${size} bytes`);
    const img = decodePng(await readFile(png));
    assert.deepEqual([img.width, img.height], [1200, 2000]);
    // A blank page compresses to a handful of byte values; text and coloured charts produce many.
    const distinct = new Set(img.pixels).size;
    assert.ok(distinct > 100, `screenshot looks blank (${distinct} distinct byte values)`);
  });
});
