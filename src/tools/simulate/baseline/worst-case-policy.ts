/**
 * The Go coordinator's routing, modelled faithfully so the routing simulator can run the same scenario under
 * both policies (load-test report, Issues 3-5). It plugs into the scheduler's policy seam as {@link worstCasePolicy}
 * (`SchedulerOptions.policy`, src/scheduler/scheduler-options.ts): `pick` delegates here after the shared gates,
 * and admission, the memory gate and the warm-pool planner ask it instead of using their own rules. The product
 * never sets it. References are to ../shared/reference/go-coordinator.md.
 *
 * - **Admission** (`freeMemoryAdmits`, §3.4; S:registry/scheduler.go:986-1042): a request reserves
 *   prompt + the FULL max_tokens. A slot reporting `active_token_budget_max` admits when committed + that
 *   ≤ max, where committed counts every in-flight request at its full reservation (the Go provider's own
 *   accounting reserved prompt + max_tokens too). A slot without a budget uses memory with a flat
 *   400,000 B/token (`kvCacheBytesPerToken`, scheduler.go:49), whatever the model's real KV size.
 * - **Concurrency** (§3.4): the slot's max_concurrency (≤ 24), quality-capped at ⌈q × overcommit 2⌉.
 * - **Additive cost in ms** (§3.4, scheduler.go:1080-1175): state penalty (cold on disk 30,000) +
 *   effectiveQueue × 3,000 + total pending × 750 + backlog ÷ effective TPS + prompt ÷ prefill +
 *   max_tokens ÷ effective TPS + health. The backlog is the max_tokens of every request in flight on the slot,
 *   however much of it they have generated (Go's `backlogTokenMs` over the provider's `max_tokens_potential`,
 *   "sum of max_tokens across running requests", plus waiting and not yet reported requests). Effective TPS =
 *   the observed decode rate when the slot has one, else solo ÷ (1 + 0.27 × running). Idle on-disk Macs are
 *   candidates in the same scan, so a warm Mac wins until its queue, pending and backlog terms outweigh the 30 s
 *   penalty. Near-ties within 3,000 ms go to the smaller effectiveQueue, then fewer pending, then random.
 * - **Queue-before-shed** (§3.1 step 12, §3.2, §3.3): when warm (or loading) providers exist but none admits
 *   and no idle Mac can load the model, the request waits in the per-model queue (10 deep, 120 s).
 * - **Cold-load gate** (§3.4): `modelFitsHardware` (weights × 2 ≤ total memory, scheduler.go:142-150), and
 *   `free_for_load_gb` (catalog GB × 1.2) when reported, else weights + tokens × 400 kB + 4 GB OS reserve ≤
 *   total. The provider's own rule is weights × 3, so a legacy Mac may still refuse the load (Issue 4).
 * The warm-pool controller is in worst-case-warm-pool.ts (§3.8).
 *
 * Pure: no I/O, no clock.
 */
import type { ModelSlot, ProviderView } from "../../../registry/types.js";
import {
  inflightFor,
  slotActiveRequests,
  slotConcurrencyCap,
  slotTokenBudgetMax,
  soloDecodeTps,
} from "../../../scheduler/admission.js";
import { healthPenaltyMs, prefillTpsOf } from "../../../scheduler/cost.js";
import {
  GIB,
  type PolicyPickContext,
  type SchedulerOptions,
  type SchedulingPolicy,
} from "../../../scheduler/scheduler-options.js";
import type { PickResult, RouteRequest } from "../../../scheduler/types.js";

/** The Go coordinator's flat KV cost per token, bytes (`kvCacheBytesPerToken`, scheduler.go:49). */
export const WORST_CASE_KV_BYTES_PER_TOKEN = 400_000;
/** The Go coordinator's cold-load headroom factor (weights × 2 ≤ total memory). */
export const WORST_CASE_WEIGHTS_FACTOR = 2;
/** Completion / prompt tokens the Go warm-pool target assumes per request (§3.8). */
export const WORST_CASE_WARM_POOL_OUTPUT_TOKENS = 256;
export const WORST_CASE_WARM_POOL_PROMPT_TOKENS = 512;
/** Go cost constants, ms (§3.4, scheduler.go:16-18, 29-36). */
export const GO_COLD_STATE_PENALTY_MS = 30_000;
export const GO_QUEUE_PENALTY_MS = 3_000;
export const GO_PENDING_PENALTY_MS = 750;
export const GO_NEAR_TIE_MS = 3_000;
/** Go's `effectiveTPSLoadFactor` (scheduler.go:64). */
const GO_TPS_LOAD_FACTOR = 0.27;
/** Go's OS reserve in the legacy cold-load fallback, GiB. */
const GO_OS_RESERVE_GB = 4;
/** Go's cold-load padding on catalog weights (`coldLoadCatalogGBToMemGiB`, scheduler.go:957). */
const GO_COLD_LOAD_PADDING = 1.2;

/** The Go coordinator's hardware-fit rule for a cold load. */
export function worstCaseFitsHardware(totalMemoryGb: number, weightsBytes: number): boolean {
  return (weightsBytes / GIB) * WORST_CASE_WEIGHTS_FACTOR <= totalMemoryGb;
}

/** The Go warm pool's E[S] for one request on a provider decoding at `decodeTps`, clamped to [0.5 s, 120 s]. */
export function worstCaseServiceTimeMs(decodeTps: number, prefillTps: number): number {
  const ms =
    (WORST_CASE_WARM_POOL_PROMPT_TOKENS / Math.max(1, prefillTps) +
      WORST_CASE_WARM_POOL_OUTPUT_TOKENS / Math.max(1, decodeTps)) *
    1000;
  return Math.min(120_000, Math.max(500, ms));
}

/** Go's cold-load admission for an idle provider (modelFitsHardware + freeMemoryAdmits' cold branch). */
export function worstCaseColdAdmits(p: ProviderView, weightsBytes: number, requestTokens: number): boolean {
  const total = p.totalMemoryGb || p.hardware.memoryGb;
  if (!worstCaseFitsHardware(total, weightsBytes)) return false;
  if (p.freeForLoadGb !== undefined)
    return (weightsBytes / 1e9) * GO_COLD_LOAD_PADDING * (1e9 / GIB) <= p.freeForLoadGb;
  const needGb = (weightsBytes + requestTokens * WORST_CASE_KV_BYTES_PER_TOKEN) / GIB + GO_OS_RESERVE_GB;
  return needGb <= total;
}

interface GoCandidate {
  p: ProviderView;
  costMs: number;
  effectiveQueue: number;
  pending: number;
  cold: boolean;
}

/** Go's additive cost of `req` on `p` (slot undefined = cold on disk). */
function goCost(
  p: ProviderView,
  slot: ModelSlot | undefined,
  model: string,
  prompt: number,
  maxTokens: number,
  o: Readonly<SchedulerOptions>,
): GoCandidate {
  const pendingForModel = inflightFor(p, model).length;
  const running = slot ? slot.numRunning : 0;
  const effectiveQueue = Math.max(pendingForModel, slot ? slot.numRunning + slot.numWaiting : 0);
  // Go's effective TPS: the observed decode EWMA when there is one, else the static rate ÷ (1 + 0.27 × running)
  // (§3.4). The report saw per-stream decode stay flat under load (60–74 tok/s on gpt-oss), so an observed
  // rate carries no load discount.
  const observed = p.modelRates?.get(model)?.measuredDecodeTps !== undefined || (slot?.observedDecodeTps ?? 0) > 0;
  const tps = observed
    ? soloDecodeTps(p, slot, model)
    : soloDecodeTps(p, slot, model) / (1 + GO_TPS_LOAD_FACTOR * running);
  // Tokens ahead as Go counts them: each in-flight request's whole max_tokens (reserved − prompt here), not what
  // it has left, so a slot running a 32k-budget request looks ~800 s busy to the end.
  let backlog = 0;
  for (const r of p.inflight.values())
    if (r.model === model) backlog += Math.max(0, r.reservedTokens - (r.promptTokens ?? 0));
  const costMs =
    (slot ? 0 : GO_COLD_STATE_PENALTY_MS) +
    effectiveQueue * GO_QUEUE_PENALTY_MS +
    p.inflight.size * GO_PENDING_PENALTY_MS +
    (backlog / tps) * 1000 +
    (prompt / Math.max(1, prefillTpsOf(p, slot, o))) * 1000 +
    (maxTokens / tps) * 1000 +
    healthPenaltyMs(p, o);
  return { p, costMs, effectiveQueue, pending: p.inflight.size, cold: slot === undefined };
}

/** Tokens committed on a slot as Go saw them: every in-flight request at its full reservation. */
function committedTokens(p: ProviderView, slot: ModelSlot): number {
  let sum = 0;
  for (const r of inflightFor(p, slot.model)) sum += Math.max(r.reservedTokens, r.usedTokens);
  return Math.max(slot.tokenBudgetUsed, sum);
}

/**
 * The Go coordinator's decision for a request among the providers that passed the shared gates. See the
 * module comment. `weightsOf` gives a model's weight bytes on a provider.
 */
export function pickWorstCase(
  capable: readonly ProviderView[],
  req: RouteRequest,
  ctx: PolicyPickContext,
  o: Readonly<SchedulerOptions>,
): PickResult {
  const { weightsOf, entry } = ctx;
  const prompt = req.traits.estimatedPromptTokens;
  const maxTokens = Math.max(0, Math.floor(req.traits.maxTokens));
  const reserved = prompt + maxTokens;
  const warm: GoCandidate[] = [];
  let eligibleWarm = 0;
  let loading = false;
  for (const p of capable) {
    const slot = p.slots.find((s) => s.model === req.model);
    if (slot && (slot.state === "running" || slot.state === "idle")) {
      eligibleWarm++;
      if (slotActiveRequests(p, slot) >= slotConcurrencyCap(p, slot, o)) continue;
      const max = slotTokenBudgetMax(p, slot, (m) => weightsOf(p, m), WORST_CASE_KV_BYTES_PER_TOKEN, o);
      if (max !== undefined && committedTokens(p, slot) + reserved > max) continue;
      warm.push(goCost(p, slot, req.model, prompt, maxTokens, o));
    } else if (slot?.state === "loading" || p.pendingLoads.has(req.model)) {
      loading = true;
    }
  }
  // Cold-on-disk providers are candidates in the same scan, at the 30,000 ms state penalty (§3.4 "state
  // penalty … unknown (cold on disk) = 30 000"): a warm Mac wins until its queue, pending and backlog terms
  // outweigh a load. Only idle Macs the cold-load gate admits qualify (a cold load is blocked while another
  // slot is busy).
  const cold: GoCandidate[] = [];
  let anyFits = false;
  for (const p of capable) {
    const weights = weightsOf(p, req.model) || entry?.sizeBytes || 0;
    if (worstCaseFitsHardware(p.totalMemoryGb || p.hardware.memoryGb, weights)) anyFits = true;
    if (p.slots.some((s) => s.model === req.model)) continue;
    if (
      p.inflight.size > 0 ||
      p.pendingLoads.size > 0 ||
      p.slots.some((s) => s.numRunning + s.numWaiting > 0 || s.state === "loading")
    )
      continue;
    if (ctx.health.isLoadCooledDown(p.id, req.model, ctx.nowMs)) continue;
    if (!worstCaseColdAdmits(p, weights, reserved)) continue;
    cold.push(goCost(p, undefined, req.model, prompt, maxTokens, o));
  }
  const best = chooseGo([...warm, ...cold], ctx.random);
  if (best) return picked(best, reserved);
  // Queue-before-shed: capable warm (or loading) providers exist but are full and no idle Mac can load → wait.
  if (eligibleWarm > 0 || loading)
    return {
      kind: "queue",
      reason: loading && eligibleWarm === 0 ? "loading" : "all_busy",
      retryAfterMs: ctx.retryAfterMs,
    };
  if (!anyFits)
    return {
      kind: "reject",
      code: "model_unavailable",
      message: `${req.model}: no connected provider has enough memory to load it`,
    };
  // Go answers 503 model_unavailable here (§3.1 step 12); the simulator counts it as a refusal.
  return {
    kind: "reject",
    code: "model_unavailable",
    message: `${req.model}: no eligible provider and no idle provider to warm`,
  };
}

function picked(c: GoCandidate, reserved: number): PickResult {
  return {
    kind: "picked",
    providerId: c.p.id,
    reason: c.cold ? "cold" : "warm",
    cold: c.cold,
    reservedTokens: reserved,
    costMs: c.costMs,
  };
}

/** Lowest cost; near-ties (3 s) by effectiveQueue, then pending, then random (§3.4 "Pick"). */
function chooseGo(cands: GoCandidate[], random: () => number): GoCandidate | undefined {
  if (cands.length === 0) return undefined;
  let best = Infinity;
  for (const c of cands) best = Math.min(best, c.costMs);
  const near = cands.filter((c) => c.costMs <= best + GO_NEAR_TIE_MS);
  near.sort((a, b) => a.effectiveQueue - b.effectiveQueue || a.pending - b.pending);
  const top = near.filter((c) => c.effectiveQueue === near[0]!.effectiveQueue && c.pending === near[0]!.pending);
  return top[Math.min(top.length - 1, Math.floor(random() * top.length))];
}

/**
 * The Go coordinator as a scheduler policy: full max_tokens reserved, a flat 400 kB/token KV cost, no
 * oversize refusal, the weights × 2 load rule, its selection, and its warm-pool sizing (E[S] for a
 * 512 + 256-token request, no headroom, no pressure boost).
 */
export const worstCasePolicy: SchedulingPolicy = Object.freeze({
  reservedOutputTokens: (maxTokens: number) => maxTokens,
  kvBytesPerToken: WORST_CASE_KV_BYTES_PER_TOKEN,
  refusesOversized: false,
  fitsForLoad: worstCaseFitsHardware,
  pick: pickWorstCase,
  warmPool: Object.freeze({
    serviceTimeMs: (ref: ProviderView | undefined) =>
      ref ? worstCaseServiceTimeMs(soloDecodeTps(ref, undefined), ref.prefillTps) : 500,
    headroomFactor: 1,
    pressureAddsOne: false,
  }),
});
