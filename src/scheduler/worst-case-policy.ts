/**
 * The Go coordinator's admission, kept only so the routing simulator can run the same scenario under both
 * policies and show the difference (load-test report, Issues 3-5). Selecting `policy: "worst-case"` in
 * {@link SchedulerOptions} makes admission, the memory gate and the warm-pool planner behave like this:
 *
 * - **Full max_tokens reserved** (`freeMemoryAdmits`, S:registry/scheduler.go:723-734): prompt + max_tokens
 *   against the slot's token budget, however short completions really are.
 * - **Flat 400,000 bytes/token KV** (`kvCacheBytesPerToken`, scheduler.go:39-49) whenever a slot does not
 *   report a token budget, regardless of the model's architecture.
 * - **2× weights gate** (`modelFitsHardware`, scheduler.go:142-150) for cold loads, ignoring the provider's
 *   `free_for_load_gb`, while the provider itself refuses loads above 1/3 of memory: the coordinator can send
 *   a cold request to a Mac that then refuses the load.
 * - **Warm pool sized for short requests**: E[S] computed for 512 prompt / 256 completion tokens and clamped
 *   to [500 ms, 2 min] (warm_pool_target.go), so long generations are under-counted in Little's law.
 */
import { GIB } from "./scheduler-options.js";

/** The Go coordinator's flat KV cost per token, bytes. */
export const WORST_CASE_KV_BYTES_PER_TOKEN = 400_000;

/** The Go coordinator's cold-load headroom factor (weights × 2 ≤ total memory). */
export const WORST_CASE_WEIGHTS_FACTOR = 2;

/** Completion tokens the Go warm-pool target assumes per request. */
export const WORST_CASE_WARM_POOL_OUTPUT_TOKENS = 256;

/** Prompt tokens the Go warm-pool target assumes per request. */
export const WORST_CASE_WARM_POOL_PROMPT_TOKENS = 512;

/** The Go coordinator's hardware-fit rule for a cold load. */
export function worstCaseFitsHardware(totalMemoryGb: number, weightsBytes: number): boolean {
  return (weightsBytes / GIB) * WORST_CASE_WEIGHTS_FACTOR <= totalMemoryGb;
}

/** The Go warm pool's E[S] for one request on a provider decoding at `decodeTps`, clamped to [0.5 s, 120 s]. */
export function worstCaseServiceTimeMs(decodeTps: number, prefillTps: number): number {
  const ms =
    (WORST_CASE_WARM_POOL_PROMPT_TOKENS / Math.max(1, prefillTps) + WORST_CASE_WARM_POOL_OUTPUT_TOKENS / Math.max(1, decodeTps)) * 1000;
  return Math.min(120_000, Math.max(500, ms));
}
