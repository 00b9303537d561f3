/**
 * The load generator's HTTP client (gateway-load.ts runs the cells): one request with its first-token clock, and
 * the workers' keep-alive connections, kept for the whole run and opened before anything is measured.
 */
import http from "node:http";

/** Matches an SSE event that carries generated text (not the role-only opening delta). */
const CONTENT = /"content":"[^"]/;

/** Streaming bookkeeping of one response: when the first token arrived, and the gaps between reads after it. */
export class StreamTimer {
  firstTokenMs = 0;
  readonly gaps: number[] = [];
  #last = 0;
  #carry = "";

  /** Called with each chunk the client reads, at `atMs` since the request started. */
  read(chunk: string, atMs: number): void {
    if (this.firstTokenMs > 0) {
      this.gaps.push(atMs - this.#last);
      this.#last = atMs;
      return;
    }
    // A token's event may straddle two reads: keep enough of the previous one to match across the boundary.
    const text = this.#carry + chunk;
    if (CONTENT.test(text)) {
      this.firstTokenMs = atMs;
      this.#last = atMs;
    } else this.#carry = text.slice(-16);
  }
}

export function once(
  agent: http.Agent,
  key: string,
  body: string,
  stream: boolean,
  url: string,
): Promise<{ ok: boolean; ttfbMs: number; totalMs: number; timer?: StreamTimer; error?: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let ttfb = 0;
    const timer = stream ? new StreamTimer() : undefined;
    const req = http.request(
      url,
      {
        method: "POST",
        agent,
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${key}`,
          "content-length": Buffer.byteLength(body),
        },
      },
      (res) => {
        let tail = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          const at = performance.now() - t0;
          if (ttfb === 0) ttfb = at;
          timer?.read(chunk, at);
          tail = (tail + chunk).slice(-200);
        });
        res.on("end", () => {
          const totalMs = performance.now() - t0;
          // A 200 is not enough: a stream must end with [DONE], a JSON body with a closing brace.
          const complete = stream ? tail.includes("[DONE]") : tail.trimEnd().endsWith("}");
          if (res.statusCode === 200 && complete)
            resolve({ ok: true, ttfbMs: ttfb, totalMs, ...(timer ? { timer } : {}) });
          else resolve({ ok: false, ttfbMs: ttfb, totalMs, error: `${res.statusCode} ${tail.slice(0, 160)}` });
        });
        res.on("error", (e) => resolve({ ok: false, ttfbMs: ttfb, totalMs: performance.now() - t0, error: String(e) }));
      },
    );
    req.on("error", (e) => resolve({ ok: false, ttfbMs: 0, totalMs: performance.now() - t0, error: String(e) }));
    req.end(body);
  });
}

/** Longer than any server's keep-alive hint the bench meets (the coordinator's default is 65 s). */
const AGENT_TIMEOUT_MS = 600_000;

/** One keep-alive agent per worker, created on first use and kept until {@link ClientPool.destroy}. */
export class ClientPool {
  readonly #agents: http.Agent[] = [];

  agent(worker: number): http.Agent {
    // `timeout` makes node's agent honour the server's `Keep-Alive: timeout=` hint: without one of its own it ignores
    // the hint and reuses a socket idle past it, which the server closes as the request goes out (ECONNRESET, a
    // failed request that is the bench's doing). With it, a socket idle for a second less than the hint is dropped
    // here first, and the next cell's warm-up opens a new one, unmeasured. Active requests are not affected.
    return (this.#agents[worker] ??= new http.Agent({
      keepAlive: true,
      maxSockets: 1,
      maxFreeSockets: 1,
      timeout: AGENT_TIMEOUT_MS,
    }));
  }

  destroy(): void {
    for (const a of this.#agents) a.destroy();
    this.#agents.length = 0;
  }
}

/**
 * Opens every worker's connection to each of the target's URLs: one request per worker and URL, unmeasured, so no
 * cell opens a connection while it is measured (a worker rotating over 3 URLs touches each only every 3rd request).
 */
export async function primeConnections(
  target: { url: string | string[]; apiKeys: readonly string[] },
  concurrency: number,
  body: string,
  stream: boolean,
  pool: ClientPool,
): Promise<void> {
  const urls = typeof target.url === "string" ? [target.url] : target.url;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (const [i, url] of urls.entries())
        await once(pool.agent(worker), target.apiKeys[(worker + i) % target.apiKeys.length]!, body, stream, url);
    }),
  );
}
