/**
 * One streamed chat completion against any OpenAI-compatible endpoint, measured from the outside with Node's
 * built-in fetch. Never throws: every outcome, including failures, comes back as data for the cell runner.
 */
import { parseErrorBody, type Failure } from "./classify.js";
import { SseParser } from "./sse-parser.js";

/** What {@link sendChatRequest} needs. */
export interface ChatRequestOptions {
  /** API base including the version path, e.g. "http://127.0.0.1:8080/v1" (no trailing slash). */
  baseUrl: string;
  /** Bearer key; omitted from the request when null. */
  apiKey: string | null;
  model: string;
  maxTokens: number;
  prompt: string;
  /** Client timeout for the whole request (headers and body), in milliseconds. */
  timeoutMs: number;
  /** Aborts the request from outside (e.g. Ctrl-C); reported as a `network` failure "aborted". */
  signal?: AbortSignal;
  /** Epoch milliseconds with sub-millisecond resolution. */
  now: () => number;
}

/** The measured outcome of one request. Times after `startMs` are relative to it, in milliseconds. */
export interface RequestOutcome {
  startMs: number;
  ttfbMs: number | null;
  ttftMs: number | null;
  latencyMs: number;
  status: number | null;
  promptTokens: number;
  completionTokens: number;
  tokensSource: "usage" | "counted";
  /** null on success. */
  failure: Failure | null;
}

// undici's own header/body timeouts (300 s by default) are client-side give-ups too, not server errors.
const undiciTimeoutCodes = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT"]);

interface StreamState {
  ttfbMs: number | null;
  ttftMs: number | null;
  usage: { prompt: number; completion: number } | null;
  counted: number;
  finished: boolean;
  done: boolean;
  failure: Failure | null;
}

/** Sends one request with `stream: true` and `stream_options.include_usage`, and measures it. */
export async function sendChatRequest(o: ChatRequestOptions): Promise<RequestOutcome> {
  const startMs = o.now();
  const since = () => o.now() - startMs;
  const ac = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, o.timeoutMs);
  const onOuterAbort = () => ac.abort();
  o.signal?.addEventListener("abort", onOuterAbort, { once: true });
  const s: StreamState = {
    ttfbMs: null,
    ttftMs: null,
    usage: null,
    counted: 0,
    finished: false,
    done: false,
    failure: null,
  };
  let status: number | null = null;
  try {
    const headers: Record<string, string> = { "content-type": "application/json", accept: "text/event-stream" };
    if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`;
    const res = await fetch(`${o.baseUrl}/chat/completions`, {
      method: "POST",
      headers,
      signal: ac.signal,
      body: JSON.stringify({
        model: o.model,
        messages: [{ role: "user", content: o.prompt }],
        max_tokens: o.maxTokens,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    status = res.status;
    if (!res.ok) {
      const body = parseErrorBody(await res.text());
      s.failure = { kind: "http", status: res.status, ...body };
    } else if ((res.headers.get("content-type") ?? "").includes("text/event-stream") && res.body) {
      await readStream(res.body, s, since);
    } else {
      // A deployment that ignores `stream: true` answers with one JSON body; measure it the same way.
      const text = await res.text();
      s.ttfbMs = since();
      readJsonAnswer(text, s);
    }
  } catch (err) {
    const code = (err as { cause?: { code?: string } })?.cause?.code;
    if (timedOut || (code && undiciTimeoutCodes.has(code))) s.failure = { kind: "timeout" };
    else if (o.signal?.aborted) s.failure = { kind: "network", message: "aborted" };
    else s.failure = { kind: "network", message: networkMessage(err) };
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener("abort", onOuterAbort);
  }
  return {
    startMs,
    ttfbMs: s.ttfbMs,
    ttftMs: s.ttftMs,
    latencyMs: since(),
    status,
    promptTokens: s.usage?.prompt ?? 0,
    completionTokens: s.usage?.completion ?? s.counted,
    tokensSource: s.usage ? "usage" : "counted",
    failure: s.failure,
  };
}

async function readStream(body: ReadableStream<Uint8Array>, s: StreamState, since: () => number): Promise<void> {
  const parser = new SseParser();
  const decoder = new TextDecoder();
  for await (const bytes of body as unknown as AsyncIterable<Uint8Array>) {
    for (const ev of parser.feed(decoder.decode(bytes, { stream: true }))) {
      handleEvent(ev.data, s, since);
      if (s.failure) return; // leaving the loop cancels the body, which releases the connection
    }
  }
  for (const ev of parser.end()) handleEvent(ev.data, s, since);
  if (!s.failure && !s.done && !s.finished) s.failure = { kind: "network", message: "stream ended before [DONE]" };
}

function handleEvent(data: string, s: StreamState, since: () => number): void {
  s.ttfbMs ??= since();
  if (data === "[DONE]") {
    s.done = true;
    return;
  }
  let chunk: ChatChunk;
  try {
    chunk = JSON.parse(data) as ChatChunk;
  } catch {
    return; // a malformed event is not the server's answer to us; keep reading
  }
  if (chunk.error) {
    const e = typeof chunk.error === "string" ? { message: chunk.error } : chunk.error;
    s.failure = { kind: "in_band", code: e.code == null ? null : String(e.code), message: e.message ?? null };
    return;
  }
  for (const choice of chunk.choices ?? []) {
    const d = choice.delta ?? {};
    const text = d.content || d.reasoning_content || d.reasoning;
    if (text) {
      s.ttftMs ??= since();
      s.counted++;
    }
    if (choice.finish_reason) s.finished = true;
  }
  if (chunk.usage) s.usage = { prompt: chunk.usage.prompt_tokens ?? 0, completion: chunk.usage.completion_tokens ?? 0 };
}

function readJsonAnswer(text: string, s: StreamState): void {
  try {
    const body = JSON.parse(text) as { usage?: ChatChunk["usage"]; choices?: { message?: { content?: string } }[] };
    if (body.choices?.some((c) => c.message?.content)) s.ttftMs = s.ttfbMs;
    if (body.usage) s.usage = { prompt: body.usage.prompt_tokens ?? 0, completion: body.usage.completion_tokens ?? 0 };
    s.finished = true;
  } catch {
    s.failure = { kind: "network", message: "200 with an unparseable body" };
  }
}

function networkMessage(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  if (cause?.code) return cause.code;
  return cause?.message ?? (err instanceof Error ? err.message : String(err));
}

interface ChatChunk {
  error?: string | { code?: unknown; message?: string };
  choices?: {
    delta?: { content?: string | null; reasoning_content?: string | null; reasoning?: string | null };
    finish_reason?: string | null;
  }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
}
