/**
 * One process's admissions: charging a request's buckets and concurrency slots all or nothing, the ticket it
 * gets back, and reconciling that ticket once the request's actual usage is known (expected output → actual).
 */
import { count, observe } from "../telemetry/metrics.js";
import type { OutputEstimator } from "../util/output-estimator.js";
import type { BucketStore } from "./bucket-store.js";
import type { ConcurrencyGate, ConcurrencySlot } from "./concurrency-gate.js";
import type { LimitPlanner, PlannedBucket } from "./limit-planner.js";
import type { AdmitInput, AdmitResult, RateLimitedCaller, RateTicket, ReconcileUsage } from "./types.js";

/** What an admission needs; the limiter builds one and shares its planner, store and gate. */
export interface AdmissionOptions {
  planner: LimitPlanner;
  store: BucketStore;
  gate: ConcurrencyGate;
  /** Expected-output model, keyed by {@link estimatorKey}. */
  estimator: OutputEstimator;
  /** Charge OTPM with the expected output (true) or the full max_tokens (false). */
  chargeExpectedOutput: boolean;
}

interface TicketInfo {
  caller: RateLimitedCaller;
  maxOutputTokens: number;
  /** Store keys charged per token dimension, to reconcile the same buckets. */
  inputKeys: string[];
  outputKeys: string[];
  /** Concurrency counters this request holds, given back at reconciliation. */
  concurrencyKeys: string[];
}

const nothing = { requests: 0, input_tokens: 0, output_tokens: 0 };

/** The estimator key for an (account, model) pair. */
export function estimatorKey(accountId: string, model: string): string {
  return `${accountId}\u0000${model}`;
}

/** Admits requests against the planner's limits and reconciles their tickets. */
/** Grant exchanges one request may wait for (a shared store) before its refusal stands. */
export const MAX_REPLENISH_ROUNDS = 3;

export class Admission {
  readonly #o: AdmissionOptions;
  // Tickets this admission issued and has not reconciled: identity makes reconcile idempotent without a new field.
  readonly #open = new WeakMap<RateTicket, TicketInfo>();

  constructor(options: AdmissionOptions) {
    this.#o = options;
  }

  /**
   * Checks and charges every bucket and slot of the caller's plan, all or nothing. `final` false: a refusal that
   * will be retried, not counted as a rejection.
   */
  admit(input: AdmitInput, nowMs: number, final = true): AdmitResult {
    const { planner, store, gate } = this.#o;
    const { maxOut, chargedIn, chargedOut, planned, slots } = this.#charges(input, nowMs);
    // Concurrency first: a request refused for it is charged nothing.
    const full = gate.full(slots);
    if (full) return this.#refuseConcurrency(input, full, planned, slots, nowMs);
    const result = store.takeAll(planned, nowMs);
    const headers = planner.headers(planned, result.buckets, nowMs);
    if (!result.allowed) {
      gate.writeHeaders(headers, slots);
      return refuseBucket(input, planned[result.index]!, result.retryAfterMs, headers, final);
    }
    gate.enter(slots);
    gate.writeHeaders(headers, slots);
    const ticket = makeTicket(input, chargedIn, chargedOut);
    this.#open.set(ticket, {
      caller: input,
      maxOutputTokens: maxOut,
      inputKeys: planned.filter((p) => p.dimension === "input_tokens").map((p) => p.key),
      outputKeys: planned.filter((p) => p.dimension === "output_tokens").map((p) => p.key),
      concurrencyKeys: slots.map((c) => c.key),
    });
    return { ok: true, ticket, headers };
  }

  /**
   * {@link admit}, and when a bucket refused it and the store can fetch more (a shared store), one round trip for
   * the short buckets and one more try. `now` is read again after the wait.
   */
  async admitWaiting(input: AdmitInput, now: () => number): Promise<AdmitResult> {
    const store = this.#o.store;
    let result = this.admit(input, now(), !store.replenish);
    // A grant exchange can be taken by requests that arrived while this one waited for it: wait for another,
    // a bounded number of times, so only a bucket the shared row cannot refill refuses (the last try counts).
    for (let round = 1; round <= MAX_REPLENISH_ROUNDS; round++) {
      if (result.ok || result.dimension === "concurrent_requests" || !store.replenish) return result;
      await store.replenish(this.#charges(input, now()).planned, now());
      result = this.admit(input, now(), round === MAX_REPLENISH_ROUNDS);
    }
    return result;
  }

  /** What a request charges: its expected tokens, and the buckets and slots they apply to. */
  #charges(input: AdmitInput, nowMs: number) {
    const maxOut = nonNegativeInt(input.maxOutputTokens);
    const chargedIn = nonNegativeInt(input.inputTokens);
    const chargedOut = this.#o.chargeExpectedOutput
      ? this.#o.estimator.expected(estimatorKey(input.accountId, input.model), maxOut)
      : maxOut;
    const { buckets: planned, slots } = this.#o.planner.plan(
      input,
      { requests: 1, input_tokens: chargedIn, output_tokens: chargedOut },
      nowMs,
    );
    return { maxOut, chargedIn, chargedOut, planned, slots };
  }

  /** The caller's `x-ratelimit-*` headers as its buckets and slots stand, charging nothing. */
  headers(who: RateLimitedCaller, nowMs: number): Record<string, string> {
    const { buckets: planned, slots } = this.#o.planner.plan(who, nothing, nowMs);
    const headers = this.#peekHeaders(planned, nowMs);
    this.#o.gate.writeHeaders(headers, slots);
    return headers;
  }

  /** Gives back the ticket's slots and settles its token buckets with the actual usage. Idempotent per ticket. */
  reconcile(ticket: RateTicket, actual: ReconcileUsage, nowMs: number): void {
    const { planner, store, gate, estimator } = this.#o;
    const info = this.#open.get(ticket);
    if (!info) return; // already reconciled, a bypass ticket, or not ours
    this.#open.delete(ticket);
    gate.leave(info.concurrencyKeys);
    const actualIn = nonNegativeInt(actual.inputTokens);
    const actualOut = nonNegativeInt(actual.outputTokens);
    const deltaIn = actualIn - ticket.chargedInputTokens;
    const deltaOut = actualOut - ticket.chargedOutputTokens;
    // Re-plan with today's limits (an override may have changed mid-request) but the buckets charged then.
    for (const p of planner.plan(info.caller, nothing, nowMs).buckets) {
      if (p.dimension === "input_tokens" && info.inputKeys.includes(p.key))
        store.adjust(p.key, p.limits, deltaIn, nowMs);
      if (p.dimension === "output_tokens" && info.outputKeys.includes(p.key))
        store.adjust(p.key, p.limits, deltaOut, nowMs);
    }
    // Magnitude plus a direction tag: OpenTelemetry histograms drop negative values.
    const direction = deltaOut > 0 ? "over" : deltaOut < 0 ? "under" : "exact";
    observe("ratelimit.output_admission.delta_tokens", Math.abs(deltaOut), { tier: info.caller.tier, direction });
    if (actual.representative !== false) {
      estimator.observe(estimatorKey(ticket.accountId, ticket.model), actualOut, info.maxOutputTokens);
    }
  }

  #peekHeaders(planned: readonly PlannedBucket[], nowMs: number): Record<string, string> {
    return this.#o.planner.headers(
      planned,
      planned.map((p) => this.#o.store.peek(p.key, p.limits, nowMs)),
      nowMs,
    );
  }

  #refuseConcurrency(
    input: AdmitInput,
    full: ConcurrencySlot,
    planned: readonly PlannedBucket[],
    slots: readonly ConcurrencySlot[],
    nowMs: number,
  ): AdmitResult {
    const headers = this.#peekHeaders(planned, nowMs);
    this.#o.gate.writeHeaders(headers, slots);
    count("ratelimit.rejections", { tier: input.tier, dimension: "concurrent_requests" });
    const who = full.scope === "key" ? `API key ${input.keyId}` : `account ${input.accountId}`;
    return {
      ok: false,
      dimension: "concurrent_requests",
      retryAfterMs: 1_000,
      message: `concurrent_requests limit (${full.limit}) reached for ${who}; retry when one of its requests has finished`,
      headers,
    };
  }
}

/** The ticket handed back on admission: what was charged, for reconciliation. */
export function makeTicket(input: AdmitInput, chargedInputTokens: number, chargedOutputTokens: number): RateTicket {
  return Object.freeze({
    accountId: input.accountId,
    keyId: input.keyId,
    model: input.model,
    chargedInputTokens,
    chargedOutputTokens,
  });
}

function refuseBucket(
  input: AdmitInput,
  p: PlannedBucket,
  retryAfterMs: number,
  headers: Record<string, string>,
  final: boolean,
): AdmitResult {
  if (final) count("ratelimit.rejections", { tier: input.tier, dimension: p.dimension });
  const who = p.scope === "key" ? `API key ${input.keyId}` : `account ${input.accountId}`;
  const retryS = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return {
    ok: false,
    dimension: p.dimension,
    retryAfterMs,
    message: `${p.dimension} rate limit exceeded for ${who}; retry in ${retryS} s`,
    headers,
  };
}

function nonNegativeInt(x: number): number {
  return Number.isFinite(x) && x > 0 ? Math.ceil(x) : 0;
}
