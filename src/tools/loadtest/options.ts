/**
 * Command-line options of `coordinator loadtest`. Pure: argv and env in, a tagged result out; the CLI prints
 * `usage` for `help` and exits 2 with the message for `error`.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import type { CellStop } from "./run-cell.js";

/** Everything a load-test run needs, with defaults applied. */
export interface LoadtestOptions {
  /** API base including the version path, without a trailing slash. Default http://127.0.0.1:8080/v1. */
  baseUrl: string;
  /** Bearer key, or null to send none. */
  apiKey: string | null;
  /** Model id, or null to use the first model of GET /models. */
  model: string | null;
  /** The max_tokens axis of the matrix. Default 512, 4096, 32768. */
  maxTokens: number[];
  /** The concurrency axis of the matrix. Default 8, 16, 32, 64. */
  concurrency: number[];
  /** When each cell ends. Default: after 30 s. */
  stop: CellStop;
  prompt: string;
  /** Client timeout per request, in milliseconds. Default 300,000. */
  timeoutMs: number;
  /** Capacity sampling interval, in milliseconds. Default 3,000. */
  sampleIntervalMs: number;
  /** Report directory. Default ./loadtest-out. */
  outDir: string;
  /** Live progress on stderr. Default true. */
  progress: boolean;
}

/** The outcome of parsing argv. */
export type ParseResult =
  | { kind: "run"; options: LoadtestOptions }
  | { kind: "help" }
  | { kind: "error"; message: string };

/** The default prompt asks for long output so that max_tokens, not the model, bounds each request. */
export const defaultPrompt =
  "Write a long, detailed essay on the history of computing, from mechanical calculators to modern GPUs. " +
  "Use many sections and keep writing until you are stopped.";

/** Usage text for `--help`. */
export const usage = `Usage: coordinator loadtest [options]

Runs a closed-loop burst matrix (max_tokens x concurrency) against any OpenAI-compatible API using only a base URL
and a key, samples GET {base}/models/capacity, classifies every error, and writes Markdown, JSON and HTML reports.

Options:
  --base-url URL          API base; a bare host gets /v1 (env LOADTEST_BASE_URL, OPENAI_BASE_URL; default http://127.0.0.1:8080/v1)
  --api-key KEY           bearer key (env OPENAI_API_KEY, DEV_API_KEY; default none)
  --model ID              model to test (default: the first from GET {base}/models)
  --max-tokens LIST       max_tokens values, comma-separated (default 512,4096,32768)
  --concurrency LIST      concurrent workers per cell, comma-separated (default 8,16,32,64)
  --requests N            requests per cell (exclusive with --duration)
  --duration D            time per cell, e.g. 30s, 2m (default 30s); requests in flight finish
  --prompt TEXT           the user message (default: a long-essay prompt)
  --timeout D             client timeout per request (default 300s)
  --sample-interval D     capacity sampling interval (default 3s)
  --out DIR               report directory (default ./loadtest-out)
  --no-progress           no live progress on stderr
  -h, --help              this text

Durations: a number with ms, s, m or h (a bare number means seconds).
Error classes: billing_503, ratelimit_429, capacity_429, pool_exhausted_429, dispatch_503, in_band_error,
client_timeout, http_4xx, network.
Exit codes: 0 the run completed (errors are data, see the report), 1 the target could not be used, 2 bad options.
`;

/** The flags, for `node:util` parseArgs; every value flag takes a string, `--no-progress` and `--help` none. */
const flagConfig = {
  "base-url": { type: "string" },
  "api-key": { type: "string" },
  model: { type: "string" },
  "max-tokens": { type: "string" },
  concurrency: { type: "string" },
  requests: { type: "string" },
  duration: { type: "string" },
  prompt: { type: "string" },
  timeout: { type: "string" },
  "sample-interval": { type: "string" },
  out: { type: "string" },
  "no-progress": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

/** Every long flag name, e.g. "--base-url" (the usage text documents exactly these). */
export const flagNames: readonly string[] = Object.keys(flagConfig).map((n) => `--${n}`);

/**
 * Parses argv (without the program and subcommand names) and env into options. parseArgs runs non-strict with
 * tokens so that each mistake gets a message naming the flag (strict mode's messages differ across Node versions),
 * and so that a value flag takes the next argument as its value even when it starts with "-" (`--prompt -x`).
 */
export function parseLoadtestOptions(argv: readonly string[], env: NodeJS.ProcessEnv): ParseResult {
  const { tokens } = parseArgs({
    args: [...argv],
    options: flagConfig,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  if (tokens.some((t) => t.kind === "option" && t.name === "help")) return { kind: "help" };
  const flags = new Map<string, string>();
  let progress = true;
  for (const t of tokens) {
    if (t.kind === "positional")
      return { kind: "error", message: `unexpected argument ${JSON.stringify(t.value)} (see --help)` };
    if (t.kind === "option-terminator") return { kind: "error", message: `unknown option "--" (see --help)` };
    const type = Object.hasOwn(flagConfig, t.name) ? flagConfig[t.name as keyof typeof flagConfig].type : null;
    if (type === null) return { kind: "error", message: `unknown option ${JSON.stringify(t.rawName)} (see --help)` };
    if (type === "boolean") {
      if (t.value !== undefined) return { kind: "error", message: `${t.rawName} takes no value` };
      progress = false; // the only boolean besides --help
      continue;
    }
    if (t.value === undefined) return { kind: "error", message: `${t.rawName} needs a value` };
    flags.set(t.rawName, t.value);
  }
  try {
    return { kind: "run", options: build(flags, env, progress) };
  } catch (e) {
    return { kind: "error", message: (e as Error).message };
  }
}

function build(flags: Map<string, string>, env: NodeJS.ProcessEnv, progress: boolean): LoadtestOptions {
  const rawBase = flags.get("--base-url") ?? env.LOADTEST_BASE_URL ?? env.OPENAI_BASE_URL ?? "http://127.0.0.1:8080/v1";
  let url: URL;
  try {
    url = new URL(rawBase);
  } catch {
    throw new Error(`--base-url: not a URL: ${JSON.stringify(rawBase)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new Error(`--base-url: must be http(s), got ${url.protocol}`);
  // A bare host (what an operator types for the server) means its OpenAI API under /v1; any other path (a proxy
  // prefix, an explicit /v1) is taken as given.
  if (url.pathname === "" || url.pathname === "/") url.pathname = "/v1";
  if (flags.has("--requests") && flags.has("--duration")) throw new Error("--requests and --duration are exclusive");
  const stop: CellStop = flags.has("--requests")
    ? { kind: "requests", count: positiveInt("--requests", flags.get("--requests")!) }
    : { kind: "duration", durationMs: durationMs("--duration", flags.get("--duration") ?? "30s") };
  const prompt = flags.get("--prompt") ?? defaultPrompt;
  if (prompt.trim() === "") throw new Error("--prompt must not be empty");
  const model = flags.get("--model") ?? null;
  if (model !== null && model.trim() === "") throw new Error("--model must not be empty");
  const outDir = flags.get("--out") ?? "./loadtest-out";
  if (outDir === "") throw new Error("--out must not be empty");
  return {
    baseUrl: url.toString().replace(/\/+$/, ""),
    apiKey: flags.get("--api-key") || env.OPENAI_API_KEY || env.DEV_API_KEY || null,
    model,
    maxTokens: intList("--max-tokens", flags.get("--max-tokens") ?? "512,4096,32768"),
    concurrency: intList("--concurrency", flags.get("--concurrency") ?? "8,16,32,64"),
    stop,
    prompt,
    timeoutMs: durationMs("--timeout", flags.get("--timeout") ?? "300s"),
    sampleIntervalMs: durationMs("--sample-interval", flags.get("--sample-interval") ?? "3s"),
    outDir,
    progress,
  };
}

/** Parses a positive integer (underscores allowed: 32_768). */
export function positiveInt(flag: string, raw: string): number {
  const s = raw.trim().replaceAll("_", "");
  if (!/^\d+$/.test(s) || Number(s) <= 0 || !Number.isSafeInteger(Number(s))) {
    throw new Error(`${flag}: expected a positive integer, got ${JSON.stringify(raw)}`);
  }
  return Number(s);
}

function intList(flag: string, raw: string): number[] {
  const parts = raw
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  if (parts.length === 0) throw new Error(`${flag}: expected a comma-separated list of positive integers`);
  return parts.map((p) => positiveInt(flag, p));
}

/** Parses "500ms", "30s", "2m", "1h" or a bare number of seconds into milliseconds (> 0). */
export function durationMs(flag: string, raw: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(raw.trim());
  const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
  const ms = m ? Number(m[1]) * unitMs[(m[2] ?? "s") as keyof typeof unitMs] : NaN;
  if (!(ms >= 1)) throw new Error(`${flag}: expected a duration like 500ms, 30s or 2m, got ${JSON.stringify(raw)}`);
  return Math.round(ms);
}
