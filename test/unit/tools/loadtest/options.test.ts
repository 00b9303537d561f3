import assert from "node:assert/strict";
import {
  durationMs,
  flagNames,
  parseLoadtestOptions,
  usage,
  type LoadtestOptions,
} from "../../../../src/tools/loadtest/options.js";

function run(argv: string[], env: NodeJS.ProcessEnv = {}): LoadtestOptions {
  const r = parseLoadtestOptions(argv, env);
  assert.equal(r.kind, "run", r.kind === "error" ? r.message : "");
  return (r as { options: LoadtestOptions }).options;
}

function error(argv: string[]): string {
  const r = parseLoadtestOptions(argv, {});
  assert.equal(r.kind, "error");
  return (r as { message: string }).message;
}

describe("loadtest options", () => {
  it("applies the documented defaults", () => {
    const o = run([]);
    assert.equal(o.baseUrl, "http://127.0.0.1:8080/v1");
    assert.equal(o.apiKey, null);
    assert.equal(o.model, null);
    assert.deepEqual(o.maxTokens, [512, 4096, 32768]);
    assert.deepEqual(o.concurrency, [8, 16, 32, 64]);
    assert.deepEqual(o.stop, { kind: "duration", durationMs: 30_000 });
    assert.equal(o.timeoutMs, 300_000);
    assert.equal(o.sampleIntervalMs, 3_000);
    assert.equal(o.outDir, "./loadtest-out");
    assert.equal(o.progress, true);
  });

  it("takes a bare host as its /v1 API, and keeps any other path as given", () => {
    assert.equal(run(["--base-url", "http://host:8080"], {}).baseUrl, "http://host:8080/v1");
    assert.equal(run(["--base-url", "http://host:8080/"], {}).baseUrl, "http://host:8080/v1");
    assert.equal(run(["--base-url", "http://host:8080/v1/"], {}).baseUrl, "http://host:8080/v1");
    assert.equal(run(["--base-url", "https://gw.example/proxy/openai"], {}).baseUrl, "https://gw.example/proxy/openai");
  });

  it("reads the base URL and key from env, flags winning", () => {
    const env = {
      OPENAI_BASE_URL: "https://a.example/v1/",
      LOADTEST_BASE_URL: "https://b.example/v1",
      DEV_API_KEY: "dev",
      OPENAI_API_KEY: "oa",
    };
    assert.equal(run([], env).baseUrl, "https://b.example/v1");
    assert.equal(run([], { OPENAI_BASE_URL: "https://a.example/v1/" }).baseUrl, "https://a.example/v1");
    assert.equal(run([], env).apiKey, "oa");
    assert.equal(run([], { DEV_API_KEY: "dev" }).apiKey, "dev");
    assert.equal(run(["--base-url", "http://h:1/v1", "--api-key=k"], env).baseUrl, "http://h:1/v1");
    assert.equal(run(["--api-key=k"], env).apiKey, "k");
  });

  it("parses every flag", () => {
    const o = run([
      "--model",
      "m",
      "--max-tokens",
      "16, 32_768",
      "--concurrency=1,2",
      "--requests",
      "5",
      "--prompt",
      "hi",
      "--timeout",
      "500ms",
      "--sample-interval",
      "1.5s",
      "--out",
      "/tmp/x",
      "--no-progress",
    ]);
    assert.equal(o.model, "m");
    assert.deepEqual(o.maxTokens, [16, 32768]);
    assert.deepEqual(o.concurrency, [1, 2]);
    assert.deepEqual(o.stop, { kind: "requests", count: 5 });
    assert.equal(o.prompt, "hi");
    assert.equal(o.timeoutMs, 500);
    assert.equal(o.sampleIntervalMs, 1500);
    assert.equal(o.outDir, "/tmp/x");
    assert.equal(o.progress, false);
  });

  it("parses durations with units, a bare number meaning seconds", () => {
    assert.equal(durationMs("--d", "2m"), 120_000);
    assert.equal(durationMs("--d", "1h"), 3_600_000);
    assert.equal(durationMs("--d", "45"), 45_000);
    assert.throws(() => durationMs("--d", "0s"), /--d: expected a duration/);
  });

  it("answers help", () => {
    assert.deepEqual(parseLoadtestOptions(["--requests", "1", "--help"], {}), { kind: "help" });
  });

  it("rejects invalid input with clear messages", () => {
    assert.match(error(["--requests", "3", "--duration", "1s"]), /exclusive/);
    assert.match(error(["--concurrency", "8,x"]), /--concurrency: expected a positive integer, got "x"/);
    assert.match(error(["--max-tokens", "0"]), /--max-tokens/);
    assert.match(error(["--duration", "soon"]), /--duration: expected a duration/);
    assert.match(error(["--base-url", "not a url"]), /--base-url: not a URL/);
    assert.match(error(["--base-url", "ftp://x/v1"]), /must be http/);
    assert.match(error(["--bogus"]), /unknown option "--bogus"/);
    assert.match(error(["--model"]), /--model needs a value/);
    assert.match(error(["--out=/tmp/x", "--requests"]), /^--requests needs a value$/);
    assert.match(error(["--bogus=1"]), /unknown option "--bogus"/);
    assert.match(error(["-x"]), /unknown option "-x"/);
    assert.match(error(["--no-progress=yes"]), /^--no-progress takes no value$/);
    assert.match(error(["--requests", "3", "extra"]), /unexpected argument "extra"/);
    assert.match(error(["--", "--requests", "3"]), /unknown option "--"/);
  });

  it("takes the next argument as a value even when it starts with a dash, and the last repeat wins", () => {
    assert.equal(run(["--prompt", "-x marks the spot"]).prompt, "-x marks the spot");
    assert.equal(run(["--model", "--help"]).model, "--help");
    assert.equal(run(["--model=a", "--model", "b"]).model, "b");
    assert.deepEqual(parseLoadtestOptions(["-h"], {}), { kind: "help" });
    assert.deepEqual(parseLoadtestOptions(["--bogus", "--help"], {}), { kind: "help" });
  });

  it("documents exactly the flags it parses", () => {
    const documented = [...usage.matchAll(/^ {2}(?:-h, )?(--[a-z-]+)/gm)].map((m) => m[1]!).sort();
    assert.deepEqual(documented, [...flagNames].sort());
  });
});
