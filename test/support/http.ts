/** Raw HTTP helpers for asserting on exact wire output (SSE text, headers, status). */

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  /** `data:` payloads of an SSE body, in order (JSON-parsed when possible). */
  events: unknown[];
  elapsedMs: number;
}

/** POSTs a JSON body and reads the whole response. */
export async function postJson(
  url: string,
  apiKey: string,
  body: unknown,
  init: { signal?: AbortSignal; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const started = performance.now();
  const res = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", ...init.headers },
    body: JSON.stringify(body),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    events: sseData(text),
    elapsedMs: performance.now() - started,
  };
}

/** Parses the `data:` lines of an SSE body. */
/** How many `data: [DONE]` terminators an SSE body holds (a clean OpenAI stream has exactly one). */
export function doneCount(text: string): number {
  return text.split("\n").filter((l) => l.trim() === "data: [DONE]").length;
}

export function sseData(text: string): unknown[] {
  const out: unknown[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("data:")) continue;
    const payload = line.slice(5).trim();
    try {
      out.push(JSON.parse(payload));
    } catch {
      out.push(payload);
    }
  }
  return out;
}

/** Concatenated `choices[0].delta.content` of chat-completion chunks. */
export function chatText(events: unknown[]): string {
  let s = "";
  for (const e of events) {
    const c = (e as { choices?: { delta?: { content?: string } }[] })?.choices?.[0]?.delta?.content;
    if (typeof c === "string") s += c;
  }
  return s;
}

/** Polls `fn` until it returns true (or throws after `timeoutMs`). */
export async function eventually(
  fn: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  what = "condition",
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
