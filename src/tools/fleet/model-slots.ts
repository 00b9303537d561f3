/**
 * The models resident on one simulated Mac and its memory bookkeeping: load admission (the provider's
 * weights × 3 rule, slot count, idle eviction), request admission (max concurrency and KV token budget), and
 * the heartbeat's capacity report. Pure state with no timers; SimulatedMac drives it.
 *
 * KV accounting works like a continuous-batching engine (vLLM / mlx-lm batch generator), not like a
 * worst-case reservation: `activeTokenBudgetUsed` is the tokens actually held in KV by running requests
 * (prompt + generated so far). A request is admitted when `used + prompt + admitHeadroomTokens` fits the
 * budget and the concurrency limit allows; its KV then grows token by token ({@link ModelSlots.grow}). The
 * coordinator admits on *expected* output (src/scheduler/admission.ts); if the provider reserved the full
 * max_tokens instead it would refuse (503 CAPACITY) work the coordinator rightly sent it.
 *
 * An admitted request is never killed. When its next tokens would overflow the budget it pauses (reported in
 * `num_waiting`) until a finishing request frees KV; paused requests resume first-paused-first. If every
 * running request would be paused, the oldest keeps going (a real engine would swap the others' KV to host
 * memory): the budget may then be overshot by at most that one request's growth, and no request deadlocks.
 */
import { create } from "@bufbuild/protobuf";
import {
  BackendCapacitySchema,
  ModelSlotSchema,
  SlotState,
  type BackendCapacity,
} from "../../../gen/coordinator/provider/v1/provider_pb.js";
import type { ChipProfile } from "./chip-profiles.js";
import {
  canLoad,
  decodeTps,
  freeForLoadGb,
  loadTimeMs,
  osReserveGb,
  prefillTps,
  tokenBudgetMax,
  type ResidentModel,
  type SimModelSpec,
} from "./mac-performance.js";

const GB = 1_000_000_000;

/** One resident (or loading) model. */
export interface Slot {
  spec: SimModelSpec;
  state: "loading" | "ready";
  /** Simulated load duration, ms. */
  loadTimeMs: number;
  /** Resolves true when loaded, false when the load was abandoned; set by the Mac. */
  whenReady: Promise<boolean> | undefined;
  running: number;
  /** Requests waiting for this model to finish loading. */
  waiting: number;
  /** KV tokens held by running requests: prompt + tokens generated so far. */
  tokensUsed: number;
  /** Admitted requests on this slot, oldest first. */
  leases: KvLease[];
  observedDecodeTps: number;
  observedPrefillTps: number;
  lastUsedMs: number;
}

export type LoadDecision =
  | { kind: "loaded"; slot: Slot }
  | { kind: "loading"; slot: Slot }
  | { kind: "start"; slot: Slot; evicted: string[] }
  | { kind: "refused"; reason: "not_on_disk" | "insufficient_memory" | "no_free_slot"; message: string };

/** One admitted request's KV: what it holds, and whether it is paused waiting for KV. */
export interface KvLease {
  promptTokens: number;
  generatedTokens: number;
  /** Set while paused: the tokens it waits to add and the resume callback. */
  pause: { tokens: number; resume: () => void } | undefined;
}

export type AdmitDecision = { kind: "admitted"; lease: KvLease } | { kind: "rejected"; message: string };

/** Options of {@link ModelSlots}. */
export interface ModelSlotsOptions {
  chip: ChipProfile;
  /** Models on disk, by id. */
  onDisk: ReadonlyMap<string, SimModelSpec>;
  /** Models kept loaded at once (default 2). */
  maxModelSlots: number;
  /** Concurrent requests per model (default 8). */
  maxConcurrency: number;
  /** Disk read rate for loads, GB/s. */
  diskGbs: number;
  /** KV tokens that must stay free beyond a new request's prompt for it to be admitted. Default 256. */
  admitHeadroomTokens?: number;
}

/** The resident-model table of one Mac. */
export class ModelSlots {
  readonly #o: ModelSlotsOptions;
  readonly #slots = new Map<string, Slot>();

  constructor(options: ModelSlotsOptions) {
    this.#o = options;
  }

  get(model: string): Slot | undefined {
    return this.#slots.get(model);
  }

  /** Every resident slot, loading ones included. */
  all(): Slot[] {
    return [...this.#slots.values()];
  }

  /**
   * Decides a load of `model`: already loaded or loading, or start (evicting idle models when the slot count
   * or physical memory needs it), or refuse under the provider's rules.
   */
  beginLoad(model: string, nowMs: number): LoadDecision {
    const existing = this.#slots.get(model);
    if (existing)
      return existing.state === "ready" ? { kind: "loaded", slot: existing } : { kind: "loading", slot: existing };
    const spec = this.#o.onDisk.get(model);
    if (!spec) return { kind: "refused", reason: "not_on_disk", message: `model ${model} is not on this provider` };
    const memoryGb = this.#o.chip.memoryGb;
    if (!canLoad(memoryGb, this.#resident(), spec.sizeBytes)) {
      return {
        kind: "refused",
        reason: "insufficient_memory",
        message: `loading ${model} needs ${((spec.sizeBytes / GB) * 3).toFixed(1)} GB free, have ${(freeForLoadGb(memoryGb, this.#resident()) * 3).toFixed(1)} GB`,
      };
    }
    // Evict idle models, least recently used first, until the slot count and the physical weights fit.
    const evicted: string[] = [];
    const idle = this.all()
      .filter(isIdle)
      .sort((a, b) => a.lastUsedMs - b.lastUsedMs);
    const physicalLimit = (memoryGb - osReserveGb(memoryGb)) * GB;
    while (this.#slots.size >= this.#o.maxModelSlots || this.#weightsBytes() + spec.sizeBytes > physicalLimit) {
      const victim = idle.shift();
      if (!victim) return { kind: "refused", reason: "no_free_slot", message: "every model slot is busy" };
      this.#slots.delete(victim.spec.id);
      evicted.push(victim.spec.id);
    }
    const slot: Slot = {
      spec,
      state: "loading",
      loadTimeMs: loadTimeMs(spec.sizeBytes, this.#o.diskGbs),
      whenReady: undefined,
      running: 0,
      waiting: 0,
      tokensUsed: 0,
      leases: [],
      observedDecodeTps: decodeTps(this.#o.chip, spec),
      observedPrefillTps: prefillTps(this.#o.chip, spec),
      lastUsedMs: nowMs,
    };
    this.#slots.set(model, slot);
    return { kind: "start", slot, evicted };
  }

  /** Marks a load finished. */
  finishLoad(model: string): void {
    const slot = this.#slots.get(model);
    if (slot) slot.state = "ready";
  }

  /** Removes a model; false when it is busy (running or waiting) or absent. */
  unload(model: string, force = false): boolean {
    const slot = this.#slots.get(model);
    if (!slot || (!force && !isIdle(slot))) return false;
    this.#slots.delete(model);
    return true;
  }

  /** The model's KV token budget right now. */
  budgetMax(slot: Slot): number {
    return tokenBudgetMax(
      this.#o.chip.memoryGb,
      this.all().map((s) => s.spec.sizeBytes),
      slot.spec.kvBytesPerToken,
    );
  }

  /**
   * Admits a request whose prompt takes `promptTokens` of KV, or rejects it (503 CAPACITY) when the slot runs
   * its maximum concurrency or `used + prompt + headroom` exceeds the budget. Output is not reserved: it is
   * accounted as it is generated ({@link grow}).
   */
  admit(slot: Slot, promptTokens: number, nowMs: number): AdmitDecision {
    if (slot.running >= this.#o.maxConcurrency) {
      return { kind: "rejected", message: `${slot.spec.id}: max concurrency ${this.#o.maxConcurrency} reached` };
    }
    const max = this.budgetMax(slot);
    const headroom = this.#o.admitHeadroomTokens ?? 256;
    if (slot.tokensUsed + promptTokens + headroom > max) {
      return {
        kind: "rejected",
        message: `${slot.spec.id}: token budget ${slot.tokensUsed}+${promptTokens}+${headroom} > ${max}`,
      };
    }
    const lease: KvLease = { promptTokens, generatedTokens: 0, pause: undefined };
    slot.leases.push(lease);
    slot.running++;
    slot.tokensUsed += promptTokens;
    slot.lastUsedMs = nowMs;
    return { kind: "admitted", lease };
  }

  /**
   * Accounts `tokens` more generated tokens for `lease`. Returns undefined when they fit (accounted now), or
   * a promise that resolves once KV was freed and the tokens were accounted: the request is paused until then
   * (counted in `num_waiting`). See the module comment for why this never deadlocks.
   */
  grow(slot: Slot, lease: KvLease, tokens: number): Promise<void> | undefined {
    if (tokens <= 0) return undefined;
    const others = slot.leases.filter((l) => l !== lease);
    const fits = slot.tokensUsed + tokens <= this.budgetMax(slot);
    // FIFO fairness: a request does not overtake one already paused, unless it is the last one moving.
    const queued = others.some((l) => l.pause !== undefined);
    const lastMoving = others.every((l) => l.pause !== undefined);
    if ((fits && !queued) || lastMoving) {
      this.#account(slot, lease, tokens);
      return undefined;
    }
    return new Promise<void>((resolve) => {
      lease.pause = { tokens, resume: resolve };
    });
  }

  /** Requests paused mid-generation waiting for KV. */
  paused(slot: Slot): number {
    let n = 0;
    for (const l of slot.leases) if (l.pause) n++;
    return n;
  }

  /** Releases an admitted request (finished, failed or aborted, paused or not) and resumes paused ones. */
  release(slot: Slot, lease: KvLease, nowMs: number): void {
    const i = slot.leases.indexOf(lease);
    if (i < 0) return;
    slot.leases.splice(i, 1);
    lease.pause = undefined;
    slot.running = Math.max(0, slot.running - 1);
    slot.tokensUsed = Math.max(0, slot.tokensUsed - lease.promptTokens - lease.generatedTokens);
    slot.lastUsedMs = nowMs;
    this.#resumePaused(slot);
  }

  #account(slot: Slot, lease: KvLease, tokens: number): void {
    lease.generatedTokens += tokens;
    slot.tokensUsed += tokens;
  }

  /** Resumes paused requests oldest-first while they fit (or when nobody else is moving). */
  #resumePaused(slot: Slot): void {
    for (const l of slot.leases) {
      if (!l.pause) continue;
      const moving = slot.leases.some((x) => !x.pause);
      if (slot.tokensUsed + l.pause.tokens > this.budgetMax(slot) && moving) break;
      const { tokens, resume } = l.pause;
      l.pause = undefined;
      this.#account(slot, l, tokens);
      resume();
    }
  }

  /** The heartbeat's `BackendCapacity`. */
  capacity(): BackendCapacity {
    return create(BackendCapacitySchema, {
      totalMemoryGb: this.#o.chip.memoryGb,
      freeForLoadGb: freeForLoadGb(this.#o.chip.memoryGb, this.#resident()),
      slots: this.all().map((s) =>
        create(ModelSlotSchema, {
          model: s.spec.id,
          state: s.state === "loading" ? SlotState.LOADING : s.running > 0 ? SlotState.RUNNING : SlotState.IDLE,
          numRunning: s.running,
          numWaiting: s.waiting + this.paused(s),
          maxConcurrency: this.#o.maxConcurrency,
          activeTokenBudgetUsed: BigInt(s.tokensUsed),
          activeTokenBudgetMax: BigInt(this.budgetMax(s)),
          kvBytesPerToken: BigInt(s.spec.kvBytesPerToken),
          observedDecodeTps: round1(s.observedDecodeTps),
          observedPrefillTps: round1(s.observedPrefillTps),
          modelLoadTimeMs: s.loadTimeMs,
        }),
      ),
    });
  }

  /** Fraction of RAM in use: half the OS reserve, resident weights, and reserved KV. */
  memoryPressure(): number {
    const memoryGb = this.#o.chip.memoryGb;
    let kv = 0;
    for (const s of this.#slots.values()) kv += s.tokensUsed * s.spec.kvBytesPerToken;
    const used = (osReserveGb(memoryGb) / 2) * GB + this.#weightsBytes() + kv;
    return Math.min(1, round1((used / (memoryGb * GB)) * 100) / 100);
  }

  #resident(): ResidentModel[] {
    return this.all().map((s) => ({
      id: s.spec.id,
      sizeBytes: s.spec.sizeBytes,
      idle: isIdle(s),
      kvBytesUsed: s.tokensUsed * s.spec.kvBytesPerToken,
    }));
  }

  #weightsBytes(): number {
    let w = 0;
    for (const s of this.#slots.values()) w += s.spec.sizeBytes;
    return w;
  }
}

function isIdle(s: Slot): boolean {
  return s.state === "ready" && s.running === 0 && s.waiting === 0 && s.leases.length === 0;
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
