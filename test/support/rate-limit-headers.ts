/** Assertions on OpenAI-style `x-ratelimit-*` response headers. */
import assert from "node:assert/strict";

const dimensions = ["requests", "input-tokens", "output-tokens"] as const;

/** The nine `x-ratelimit-{limit,remaining,reset}-{requests,input-tokens,output-tokens}` headers, parsed. */
export interface RateLimitHeaders {
  limit: Record<(typeof dimensions)[number], number>;
  remaining: Record<(typeof dimensions)[number], number>;
  reset: Record<(typeof dimensions)[number], string>;
}

/** Asserts all nine headers are present and well-formed (`what` names the response in messages). */
export function assertRateLimitHeaders(headers: Headers, what: string): RateLimitHeaders {
  const out = { limit: {}, remaining: {}, reset: {} } as RateLimitHeaders;
  for (const d of dimensions) {
    const limit = headers.get(`x-ratelimit-limit-${d}`);
    const remaining = headers.get(`x-ratelimit-remaining-${d}`);
    const reset = headers.get(`x-ratelimit-reset-${d}`);
    assert.match(limit ?? "", /^\d+$/, `${what}: x-ratelimit-limit-${d} = ${limit}`);
    assert.match(remaining ?? "", /^\d+$/, `${what}: x-ratelimit-remaining-${d} = ${remaining}`);
    // OpenAI's Go-duration format: "0s", "20ms", "1.5s", "6m0s", "1h2m3s".
    assert.match(reset ?? "", /^(\d+ms|(\d+h)?(\d+m)?\d+(\.\d+)?s)$/, `${what}: x-ratelimit-reset-${d} = ${reset}`);
    out.limit[d] = Number(limit);
    out.remaining[d] = Number(remaining);
    out.reset[d] = reset!;
  }
  return out;
}
