/**
 * Timing and retry policy of the dispatcher. Every duration is in milliseconds; defaults follow the Go
 * coordinator where it measured them in production (../shared/reference/go-coordinator.md §3.2).
 */
export interface DispatchOptions {
  /** First-token deadline base. Default 5,000 ms. */
  firstTokenBaseMs: number;
  /** Extra first-token allowance per estimated prompt token (prefill grows with the prompt). Default 1 ms. */
  firstTokenPerPromptTokenMs: number;
  /** After InferenceAccepted (the provider is loading a model) the wait for content extends to this. Default 600,000 ms. */
  inferenceTimeoutMs: number;
  /** A provider that sent only a preamble (role delta) past the deadline gets this long, from the preamble, before failover. Default 90,000 ms. */
  preambleContentTimeoutMs: number;
  /** Once streaming, the longest gap between chunks before the stream is declared stalled. Default 120,000 ms. */
  idleTimeoutMs: number;
  /** Dispatch a speculative backup at this fraction of the first-token deadline (0 disables). Default 0.5. */
  speculativeFraction: number;
  /** Upper bound on provider attempts per request (primary + backups + failovers). Default 6. */
  maxAttempts: number;
  /** Upper bound on the wall time spent before content (excluding queue wait). Default 180,000 ms. */
  maxPreContentMs: number;
  /** Retries allowed after capacity-shaped errors (503, no KV budget, draining). Default 3. */
  maxCapacityRetries: number;
  /** How many role-only deltas are held before commit (more are dropped: they carry nothing). Default 8. */
  maxHeldPreamble: number;
  /** Queue bound per model. Default 10. */
  queueLimit: number;
  /** Longest a request waits in the queue. Default 120,000 ms. */
  queueWaitMs: number;
}

export const defaultDispatchOptions: Readonly<DispatchOptions> = Object.freeze({
  firstTokenBaseMs: 5_000,
  firstTokenPerPromptTokenMs: 1,
  inferenceTimeoutMs: 600_000,
  preambleContentTimeoutMs: 90_000,
  idleTimeoutMs: 120_000,
  speculativeFraction: 0.5,
  maxAttempts: 6,
  maxPreContentMs: 180_000,
  maxCapacityRetries: 3,
  maxHeldPreamble: 8,
  queueLimit: 10,
  queueWaitMs: 120_000,
});

/** The first-token deadline for a prompt of `promptTokens` (ms). */
export function firstTokenDeadlineMs(
  o: Pick<DispatchOptions, "firstTokenBaseMs" | "firstTokenPerPromptTokenMs">,
  promptTokens: number,
): number {
  return o.firstTokenBaseMs + o.firstTokenPerPromptTokenMs * Math.max(0, promptTokens);
}
