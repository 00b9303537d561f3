/**
 * Streaming load for multi-coordinator tests: N concurrent consumers using the official `openai` SDK (which,
 * like real consumers, retries connection errors, 429s and 5xx on its own), consumer k pinned to base URL
 * k mod n. Every request is recorded with where it ran, how it ended (an outcome class), its first-token
 * latency, its tokens and the coordinator's request id (`x-request-id`), so a test can say which failures were
 * allowed where.
 *
 * With `rotateOnRetry` (the default) an SDK retry goes to the next base URL, the way a load balancer stops
 * sending to a dead backend; without it the retry goes back to the same (possibly dead) coordinator.
 */
import OpenAI from "openai";

/**
 * How a request ended, for the consumer:
 * - `ok`: a complete stream (a finish reason), at the first try;
 * - `ok-after-retry`: complete, after the SDK re-sent it (connection refused or reset, 429, 5xx before content);
 * - `error`: an error before any content (an HTTP error status once the SDK's retries ran out, or an in-band
 *   error before the first token);
 * - `error-after-content`: the coordinator ended a stream that had content with an explicit error;
 * - `connection-lost`: the connection died (refused on every try, reset, or cut mid-stream) or timed out.
 */
export type OutcomeClass = "ok" | "ok-after-retry" | "error" | "error-after-content" | "connection-lost";

export interface LoadRecord {
  /** Sequence number of the request in the run. */
  index: number;
  consumer: number;
  /** Index of the base URL of the first try, and of the last (differs after a rotated retry). */
  firstNode: number;
  node: number;
  /** The base URL of the last try (`baseUrls[node]`). */
  url: string;
  /** HTTP tries the SDK made (1 = no retry). */
  tries: number;
  /** HTTP status of the last try that answered; undefined when none did. */
  status: number | undefined;
  /** Status of every try that got an answer, in order (a retried 503 or 429 shows here). */
  tryStatuses: number[];
  /** The error `code` of each try answered with an error status (e.g. `rate_limit_exceeded`, `pool_exhausted`). */
  tryErrorCodes: string[];
  outcome: OutcomeClass;
  requestId: string | undefined;
  /** Wall clock, ms. */
  startMs: number;
  endMs: number;
  /** From the request's start (first try) to its first content delta, ms. */
  firstTokenMs: number | undefined;
  contentChunks: number;
  /** Completion tokens from the usage chunk (include_usage), else undefined. */
  completionTokens: number | undefined;
  promptTokens: number | undefined;
  error: string | undefined;
}

export interface LoadDriverOptions {
  /** Coordinator base URLs (`http://127.0.0.1:PORT`); `/v1` is appended. */
  baseUrls: readonly string[];
  apiKey: string;
  concurrency: number;
  model: string;
  /** max_tokens of every request (default 64). */
  maxTokens?: number;
  /** The SDK's maxRetries (default 2, the SDK's own default). */
  maxRetries?: number;
  /** Send an SDK retry to the next base URL (default true). */
  rotateOnRetry?: boolean;
  /** Whole-request timeout per try, ms (default 60_000). */
  requestTimeoutMs?: number;
  /** Stop after this many requests in all (default: until stop()). */
  requests?: number;
  /** Prompt of request i (default: a short distinct prompt). */
  prompt?: (index: number) => string;
  /** Pause between one consumer's requests, ms (default 0). */
  thinkMs?: number;
}

export interface LoadRun {
  /** Finished requests so far (live array). */
  readonly records: LoadRecord[];
  /** Requests started and not finished. */
  readonly inFlight: number;
  /** Resolves when every consumer finished its last request (after stop(), or once `requests` were made). */
  done(): Promise<LoadRecord[]>;
  /** Lets every consumer finish its current request, then resolves with all records. */
  stop(): Promise<LoadRecord[]>;
}

/** Starts the consumers. */
export function startLoad(o: LoadDriverOptions): LoadRun {
  if (o.baseUrls.length === 0) throw new Error("load needs at least one base URL");
  const records: LoadRecord[] = [];
  let next = 0;
  let stopped = false;
  let inFlight = 0;
  const n = o.baseUrls.length;
  const consumer = async (k: number) => {
    for (;;) {
      if (stopped || (o.requests !== undefined && next >= o.requests)) return;
      const index = next++;
      inFlight++;
      try {
        records.push(await oneRequest(o, k, k % n, index));
      } finally {
        inFlight--;
      }
      if (o.thinkMs) await new Promise((r) => setTimeout(r, o.thinkMs));
    }
  };
  const all = Promise.all(Array.from({ length: o.concurrency }, (_, k) => consumer(k))).then(() => records);
  return {
    records,
    get inFlight() {
      return inFlight;
    },
    done: () => all,
    stop: () => {
      stopped = true;
      return all;
    },
  };
}

async function oneRequest(
  o: LoadDriverOptions,
  consumer: number,
  firstNode: number,
  index: number,
): Promise<LoadRecord> {
  const n = o.baseUrls.length;
  let tries = 0;
  let node = firstNode;
  let status: number | undefined;
  const tryStatuses: number[] = [];
  const tryErrorCodes: string[] = [];
  const rotate = o.rotateOnRetry ?? true;
  // The SDK calls fetch once per try: count them, and point a retry at the next coordinator.
  const fetchPerTry: typeof fetch = async (input, init) => {
    tries++;
    if (tries > 1 && rotate) node = (node + 1) % n;
    const url = new URL(input instanceof Request ? input.url : String(input));
    const target = new URL(o.baseUrls[node]!);
    url.protocol = target.protocol;
    url.host = target.host;
    const r = await fetch(url, init);
    status = r.status;
    tryStatuses.push(r.status);
    if (r.status >= 400)
      tryErrorCodes.push(
        await r
          .clone()
          .json()
          .then((b) => (b as { error?: { code?: string } }).error?.code ?? "?")
          .catch(() => "unreadable"),
      );
    return r;
  };
  const client = new OpenAI({
    apiKey: o.apiKey,
    baseURL: `${o.baseUrls[firstNode]}/v1`,
    maxRetries: o.maxRetries ?? 2,
    timeout: o.requestTimeoutMs ?? 60_000,
    fetch: fetchPerTry,
  });
  const startMs = Date.now();
  const t0 = performance.now();
  let requestId: string | undefined;
  let firstTokenMs: number | undefined;
  let contentChunks = 0;
  let finished = false;
  let usage: { completion_tokens: number; prompt_tokens: number } | undefined;
  let outcome: OutcomeClass;
  let error: string | undefined;
  try {
    const { data: stream, response } = await client.chat.completions
      .create({
        model: o.model,
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: o.maxTokens ?? 64,
        messages: [{ role: "user", content: o.prompt?.(index) ?? `load request ${index}` }],
      })
      .withResponse();
    requestId = response.headers.get("x-request-id") ?? undefined;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice?.delta?.content) {
        contentChunks++;
        firstTokenMs ??= performance.now() - t0;
      }
      if (choice?.finish_reason) finished = true;
      if (chunk.usage) usage = chunk.usage;
    }
    outcome = finished ? (tries > 1 ? "ok-after-retry" : "ok") : contentChunks > 0 ? "error-after-content" : "error";
    if (!finished) error = "stream ended without a finish reason";
  } catch (e) {
    error = e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e);
    if (e instanceof OpenAI.APIConnectionError || !(e instanceof OpenAI.APIError)) {
      // Refused, reset, cut mid-stream (undici's "terminated"), or timed out: the connection is what failed.
      outcome = "connection-lost";
    } else {
      // An HTTP error status, or an in-band SSE error event.
      outcome = contentChunks > 0 ? "error-after-content" : "error";
      if (e.status !== undefined) status = e.status;
      requestId ??= e.requestID ?? undefined;
    }
  }
  return {
    index,
    consumer,
    firstNode,
    node,
    url: o.baseUrls[node]!,
    tries,
    status,
    tryStatuses,
    tryErrorCodes,
    outcome,
    requestId,
    startMs,
    endMs: Date.now(),
    firstTokenMs,
    contentChunks,
    completionTokens: usage?.completion_tokens,
    promptTokens: usage?.prompt_tokens,
    error,
  };
}

/** Counts per outcome class (every class present, 0 when none). */
export function countOutcomes(records: readonly LoadRecord[]): Record<OutcomeClass, number> {
  const out: Record<OutcomeClass, number> = {
    ok: 0,
    "ok-after-retry": 0,
    error: 0,
    "error-after-content": 0,
    "connection-lost": 0,
  };
  for (const r of records) out[r.outcome]++;
  return out;
}

/** The q-quantile (0..1) of the defined values, nearest rank; undefined when there are none. */
export function quantile(values: readonly (number | undefined)[], q: number): number | undefined {
  const v = values.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))];
}

/** One line: counts per class, first-token p50/p99 of successful requests, per-node request counts. */
export function summarizeLoad(records: readonly LoadRecord[], nodes: number): string {
  const c = countOutcomes(records);
  const ok = records.filter((r) => r.outcome === "ok" || r.outcome === "ok-after-retry");
  const p = (q: number) =>
    quantile(
      ok.map((r) => r.firstTokenMs),
      q,
    )?.toFixed(0) ?? "-";
  const perNode = Array.from({ length: nodes }, (_, i) => records.filter((r) => r.node === i).length);
  return `${records.length} requests: ${Object.entries(c)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ")}; first token p50 ${p(0.5)} ms, p99 ${p(0.99)} ms; per node ${perNode.join("/")}`;
}
