/**
 * The service level goodput is judged on (issue 18): a request is *good* when it completed with its first token
 * at most {@link SERVICE_LEVEL}.firstTokenMs after arrival and its own decode at least
 * {@link SERVICE_LEVEL}.decodeTps tokens per second (output after the first token ÷ time from first to last
 * token). Goodput = good requests per simulated hour.
 */

export const SERVICE_LEVEL = Object.freeze({
  /** Arrival to first token, at most, ms. */
  firstTokenMs: 10_000,
  /** Decode rate of the request's own stream, at least, tok/s. */
  decodeTps: 20,
});

/** The decode rate a request saw, tok/s: tokens after the first over the time they took (∞ for one token). */
export function decodeRateTps(outputTokens: number, firstTokenAtMs: number, finishedAtMs: number): number {
  const ms = finishedAtMs - firstTokenAtMs;
  if (outputTokens <= 1) return Infinity;
  return ms <= 0 ? Infinity : ((outputTokens - 1) / ms) * 1000;
}

/** Whether a completed request met the service level. */
export function meetsServiceLevel(firstTokenMs: number, decodeTps: number): boolean {
  return firstTokenMs <= SERVICE_LEVEL.firstTokenMs && decodeTps >= SERVICE_LEVEL.decodeTps;
}

/** How the service level reads in the simulator's output. */
export function describeServiceLevel(): string {
  return `first token ≤ ${SERVICE_LEVEL.firstTokenMs / 1000} s and decode ≥ ${SERVICE_LEVEL.decodeTps} tok/s per stream`;
}
