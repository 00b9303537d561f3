/**
 * A simulated provider (the Mac side), following the same rules as the provider simulator
 * (src/tools/fleet/model-slots.ts, src/tools/fleet/inference-run.ts) in discrete time:
 *
 * The physics (decode and prefill rates, load time, the weights × 3 load rule, the concurrency law) are
 * mac-performance.ts's functions, shared with the provider simulator; what is here is the discrete-time
 * bookkeeping and this model's own calibration (measured per-model rates from the scenario, memory in GiB).
 *
 * - **Loads** under its own memory rule (weights × 3 ≤ memory), with a slot count and idle eviction.
 * - **KV admission like a continuous-batching engine:** a request is admitted when the slot's KV in use
 *   (prompt + generated so far of its running requests) plus its prompt plus {@link ADMIT_HEADROOM_TOKENS}
 *   fits the budget and the slot's concurrency limit allows; otherwise it waits in the slot's queue
 *   (`numWaiting`). Nothing is reserved for output: KV grows as tokens are generated.
 * - **Pause, never kill, on KV overflow:** when a request's next tokens would overflow the budget it pauses
 *   (reported in `numWaiting`) until a finishing request frees KV; paused requests resume oldest first and a
 *   request never overtakes an older paused one. If every decoding request would pause, the oldest keeps
 *   going (a real engine would swap the others' KV out), so nothing deadlocks.
 * - **Serial prefill per Mac:** MLX runs one prefill at a time. Admitted requests enter one FIFO prefill
 *   queue per Mac (across its models); a newcomer's first token waits for every prefill ahead of it. While a
 *   prefill runs it counts as one more stream in the concurrency law, so the Mac's decoding streams slow.
 * - **Decode** with the concurrency law rate(n) = solo / (1 + k(n − 1)) ({@link concurrentDecodeTps}), n = streams
 *   decoding on the Mac.
 *
 * It produces heartbeat content in the shape the registry stores ({@link ModelSlot}). Time is advanced in
 * steps by {@link SimProvider.tick}; a step covers (now − dt, now].
 */
import type { ModelSlot, ProviderModel } from "../../registry/types.js";
import { GIB } from "../../scheduler/scheduler-options.js";
import {
  bandwidthBoundDecodeTps,
  concurrentDecodeTps,
  kvTokensFitting,
  loadDurationMs,
  maxLoadableWeightsGb,
  prefillTpsFromDecode,
  weightsFitLoadRule,
} from "../fleet/mac-performance.js";
import type { MacSpec, ModelPerf } from "./scenario.js";

/** One request as the provider runs it. */
export interface SimJob {
  requestId: string;
  promptTokens: number;
  /** What the model will really generate (≤ max_tokens). */
  outputTokens: number;
  /** Prefill work still to do, ms at the Mac's full prefill rate (set on admission). */
  prefillLeftMs: number;
  generated: number;
  firstTokenAtMs: number | undefined;
  /** When its last token came out, ms (within the step, not rounded to it: the goodput's decode rate uses it). */
  finishedAtMs?: number;
  /** True while paused for KV (its next tokens do not fit the budget). */
  paused?: boolean;
}

interface SimSlot {
  model: string;
  readyAtMs: number;
  /** Admitted requests, oldest first: in the prefill queue, decoding, or paused. */
  running: SimJob[];
  /** Not admitted yet (KV budget or concurrency). */
  waiting: SimJob[];
  lastActiveMs: number;
  budgetMax: number;
  kvBytesPerToken: number;
  soloTps: number;
  prefillTps: number;
  loadMs: number;
}

export interface ModelFacts {
  sizeBytes: number;
  kvBytesPerToken: number;
  contextLength: number;
  isVision: boolean;
}

export interface TickEvents {
  completed: SimJob[];
  loaded: string[];
  changed: boolean;
}

/** What this model keeps out of the KV budget: 10 % of memory for the GPU's limit, then 4 GB for macOS (the scheduler's defaults). */
const GPU_MEMORY_FRACTION = 0.9;
const OS_RESERVE_GB = 4;
/** KV tokens that must stay free beyond a new request's prompt for it to be admitted (as model-slots.ts). */
export const ADMIT_HEADROOM_TOKENS = 256;

export class SimProvider {
  readonly slots = new Map<string, SimSlot>();
  busyMs = 0;
  readonly busyMsByModel = new Map<string, number>();
  /** Admitted requests waiting for (or in) prefill, across the Mac's models, FIFO. */
  readonly #prefillQueue: { slot: SimSlot; job: SimJob }[] = [];
  /**
   * Share of its nominal speed the Mac runs at now (1 = full; thermal throttling lowers it): scales decode and
   * prefill alike. Set by the simulator from the scenario's throttle windows.
   */
  speedFactor = 1;
  /** False while the Mac is away (a churn scenario's offline window): it holds nothing and takes nothing. */
  online = true;

  constructor(
    readonly id: string,
    readonly spec: MacSpec,
    readonly perf: ReadonlyMap<string, ModelPerf>,
    readonly facts: ReadonlyMap<string, ModelFacts>,
    readonly maxConcurrency: number,
  ) {}

  soloTps(model: string): number {
    return bandwidthBoundDecodeTps(this.spec.memoryBandwidthGbs, this.perf.get(model)?.decodeTpsPerGbs ?? 0.1);
  }

  prefillTps(model: string): number {
    return prefillTpsFromDecode(this.soloTps(model), this.perf.get(model)?.prefillToDecode ?? 10);
  }

  /** The provider's own load rule. */
  fitsMemory(model: string): boolean {
    const f = this.facts.get(model);
    return !!f && weightsFitLoadRule(f.sizeBytes / GIB, this.spec.memoryGb);
  }

  advertisedModels(): ProviderModel[] {
    return this.spec.models.map((id) => {
      const f = this.facts.get(id)!;
      return {
        id,
        sizeBytes: f.sizeBytes,
        quantization: "4bit",
        contextLength: f.contextLength,
        isVision: f.isVision,
        templateRenderOk: true,
      };
    });
  }

  /** True when the Mac runs nothing and loads nothing. */
  isIdle(): boolean {
    for (const s of this.slots.values()) if (s.running.length + s.waiting.length > 0 || s.readyAtMs > 0) return false;
    return true;
  }

  /** True when at least one request of `model` is admitted (prefilling, decoding or paused): slot state "running". */
  isRunning(model: string): boolean {
    const s = this.slots.get(model);
    return !!s && s.readyAtMs === 0 && s.running.length > 0;
  }

  /** True when `model` is loaded (running or idle). */
  isLoaded(model: string): boolean {
    return this.slots.get(model)?.readyAtMs === 0;
  }

  /** Requests admitted on the Mac (prefilling, decoding or paused), across its models: its streams. */
  streams(): number {
    let n = 0;
    for (const s of this.slots.values()) n += s.running.length;
    return n;
  }

  /** Requests the Mac holds not admitted yet (its own queues), across its models. */
  waitingCount(): number {
    let n = 0;
    for (const s of this.slots.values()) n += s.waiting.length;
    return n;
  }

  /** Tokens each admitted request still has to generate (true lengths: the clairvoyant bound's knowledge). */
  remainingOutputs(): { model: string; tokens: number }[] {
    const out: { model: string; tokens: number }[] = [];
    for (const s of this.slots.values())
      for (const j of [...s.running, ...s.waiting]) out.push({ model: s.model, tokens: j.outputTokens - j.generated });
    return out;
  }

  /** Models with requests admitted now. */
  busyModels(): string[] {
    return [...this.slots.values()].filter((s) => s.running.length > 0).map((s) => s.model);
  }

  /** Prefill time of the requests the Mac holds but has not admitted yet, at its current speed, ms. */
  waitingPrefillMs(): number {
    let ms = 0;
    for (const s of this.slots.values()) for (const j of s.waiting) ms += (j.promptTokens / s.prefillTps) * 1000;
    return ms / this.speedFactor;
  }

  /** Time the prefills already queued on the Mac (admitted requests) still take at its current speed, ms. */
  prefillBacklogMs(): number {
    let ms = 0;
    for (const e of this.#prefillQueue) ms += e.job.prefillLeftMs;
    return ms / this.speedFactor;
  }

  /** Time until a load of `model` under way is ready, ms (0 when loaded, undefined when neither). */
  loadRemainingMs(model: string, nowMs: number): number | undefined {
    const s = this.slots.get(model);
    if (!s) return undefined;
    return s.readyAtMs === 0 ? 0 : Math.max(0, s.readyAtMs - nowMs);
  }

  /** How long a load of `model` takes on this Mac, ms. */
  loadMs(model: string): number {
    const f = this.facts.get(model)!;
    const p = this.perf.get(model)!;
    return loadDurationMs(f.sizeBytes, p.loadGbPerS, p.loadBaseMs);
  }

  /**
   * Whether a load of `model` could have been started exactly its duration ago and be ready now: the
   * provider's rules allow it, and a model it evicts has been idle at least that long (a busy model cannot
   * have made room for it).
   */
  couldHavePrewarmed(model: string, nowMs: number): boolean {
    if (this.slots.has(model) || !this.fitsMemory(model)) return false;
    if (this.slots.size < this.spec.maxModelSlots) return true;
    const since = nowMs - this.loadMs(model);
    return [...this.slots.values()].some(
      (s) => s.running.length + s.waiting.length === 0 && s.readyAtMs === 0 && s.lastActiveMs <= since,
    );
  }

  /**
   * How long a new request of `model` with `promptTokens` would wait on the loaded slot before the provider
   * admits it, ms, knowing every running request's true remaining output (the clairvoyant bound's knowledge):
   * 0 when it admits at once, else until enough running requests finish (the one it waits for ranks behind the
   * requests already waiting). Current rates are assumed to hold.
   */
  admissionWaitMs(model: string, promptTokens: number): number {
    const s = this.slots.get(model);
    if (!s || s.readyAtMs > 0) return 0;
    const fits = s.running.length === 0 || this.#used(s) + promptTokens + ADMIT_HEADROOM_TOKENS <= s.budgetMax;
    if (s.waiting.length === 0 && s.running.length < this.maxConcurrency && fits) return 0;
    const rate = concurrentDecodeTps(s.soloTps * this.speedFactor, this.streams());
    const left = s.running
      .map((j) => j.prefillLeftMs / this.speedFactor + ((j.outputTokens - j.generated) / rate) * 1000)
      .sort((a, b) => a - b);
    return left[Math.min(left.length - 1, s.waiting.length)] ?? 0;
  }

  /** Requests admitted on the Mac whose prefill has not finished. */
  prefillQueueLength(): number {
    return this.#prefillQueue.length;
  }

  /** Whether {@link load} would accept `model` now (the provider's memory rule and its slots, idle ones evictable). */
  canLoad(model: string): boolean {
    if (this.slots.has(model)) return true;
    if (!this.fitsMemory(model)) return false;
    if (this.slots.size < this.spec.maxModelSlots) return true;
    return [...this.slots.values()].some((s) => s.running.length + s.waiting.length === 0 && s.readyAtMs === 0);
  }

  /**
   * Starts a load if the provider's own rules allow it; returns false when it refuses. `instant`: the model is
   * ready at once — the clairvoyant bound's perfect pre-warm (a load that started exactly its duration earlier),
   * under the same memory and slot rules.
   */
  load(model: string, nowMs: number, instant = false): boolean {
    if (this.slots.has(model)) return true;
    if (!this.fitsMemory(model)) return false;
    if (this.slots.size >= this.spec.maxModelSlots) {
      const idle = [...this.slots.values()].find((s) => s.running.length + s.waiting.length === 0 && s.readyAtMs === 0);
      if (!idle) return false;
      this.slots.delete(idle.model);
    }
    const f = this.facts.get(model)!;
    const p = this.perf.get(model)!;
    const weightsGb = f.sizeBytes / GIB;
    const loadMs = loadDurationMs(f.sizeBytes, p.loadGbPerS, p.loadBaseMs);
    this.slots.set(model, {
      model,
      // readyAtMs 0 = loaded (a load is never due at time 0 itself: it takes at least its warm-up).
      readyAtMs: instant ? 0 : nowMs + loadMs,
      running: [],
      waiting: [],
      lastActiveMs: nowMs,
      budgetMax: kvTokensFitting(
        (this.spec.memoryGb * GPU_MEMORY_FRACTION - weightsGb - OS_RESERVE_GB) * GIB,
        f.kvBytesPerToken,
      ),
      kvBytesPerToken: f.kvBytesPerToken,
      soloTps: this.soloTps(model),
      prefillTps: this.prefillTps(model),
      loadMs,
    });
    return true;
  }

  /** Accepts a request (loading the model if needed, at once when `instant`); false = load refused. */
  submit(model: string, job: SimJob, nowMs: number, instant = false): boolean {
    if (!this.load(model, nowMs, instant)) return false;
    const s = this.slots.get(model)!;
    s.waiting.push(job);
    s.lastActiveMs = nowMs;
    this.#admit(s);
    return true;
  }

  #used(s: SimSlot): number {
    let u = 0;
    for (const j of s.running) u += j.promptTokens + Math.ceil(j.generated);
    return u;
  }

  /** FIFO admission against the provider's own budget (prompt + headroom) and concurrency; never preempts. */
  #admit(s: SimSlot): void {
    if (s.readyAtMs > 0) return;
    while (s.waiting.length > 0 && s.running.length < this.maxConcurrency) {
      const j = s.waiting[0]!;
      // An empty slot always admits: a prompt bigger than the budget would otherwise wait forever.
      if (s.running.length > 0 && this.#used(s) + j.promptTokens + ADMIT_HEADROOM_TOKENS > s.budgetMax) break;
      s.waiting.shift();
      j.prefillLeftMs = (j.promptTokens / s.prefillTps) * 1000;
      s.running.push(j);
      this.#prefillQueue.push({ slot: s, job: j });
    }
  }

  /** Advances time by `dtMs` to `nowMs`. */
  tick(nowMs: number, dtMs: number, idleUnloadMs: number): TickEvents {
    const ev: TickEvents = { completed: [], loaded: [], changed: false };
    for (const s of this.slots.values()) {
      if (s.readyAtMs > 0 && nowMs >= s.readyAtMs) {
        s.readyAtMs = 0;
        ev.loaded.push(s.model);
        ev.changed = true;
        this.#admit(s);
      }
    }

    // Streams decoding at the start of the step (prefill done, not paused), across the Mac's models.
    let decoding = 0;
    for (const s of this.slots.values()) for (const j of s.running) if (j.prefillLeftMs <= 0 && !j.paused) decoding++;

    // Serial prefill: the head of the Mac's queue uses the GPU's prefill time; the rest wait their turn.
    // `decodeFromMs` = how long into the step a job finishing prefill now can already decode.
    let t = dtMs;
    const decodeFor = new Map<SimJob, number>();
    while (t > 0 && this.#prefillQueue.length > 0) {
      const head = this.#prefillQueue[0]!;
      // prefillLeftMs is at full speed: a throttled Mac spends 1/speedFactor as long on it.
      const used = Math.min(t, head.job.prefillLeftMs / this.speedFactor);
      head.job.prefillLeftMs -= used * this.speedFactor;
      t -= used;
      if (head.job.prefillLeftMs <= 1e-9) {
        head.job.prefillLeftMs = 0;
        this.#prefillQueue.shift();
        decodeFor.set(head.job, t);
      }
    }
    const prefillShare = (dtMs - t) / dtMs;

    let busy = false;
    for (const s of this.slots.values()) {
      if (s.readyAtMs > 0) continue;
      if (s.running.length === 0) {
        if (s.waiting.length === 0 && nowMs - s.lastActiveMs >= idleUnloadMs) {
          this.slots.delete(s.model);
          ev.changed = true;
        }
        continue;
      }
      busy = true;
      this.busyMsByModel.set(s.model, (this.busyMsByModel.get(s.model) ?? 0) + dtMs);
      // While a prefill runs it is one more stream in the concurrency law.
      const n = Math.max(1, decoding);
      const solo = s.soloTps * this.speedFactor;
      const rate = concurrentDecodeTps(solo, n) * (1 - prefillShare) + concurrentDecodeTps(solo, n + 1) * prefillShare;
      if (this.#decode(s, nowMs, dtMs, rate, decodeFor, ev)) ev.changed = true;
    }
    if (busy) this.busyMs += dtMs;
    return ev;
  }

  /** Decodes one step on a slot, oldest first, pausing on KV overflow; true if its heartbeat changed. */
  #decode(
    s: SimSlot,
    nowMs: number,
    dtMs: number,
    rate: number,
    decodeFor: ReadonlyMap<SimJob, number>,
    ev: TickEvents,
  ): boolean {
    let used = this.#used(s);
    let blocked = false;
    let moved = 0;
    let changed = false;
    const pausedNow: { j: SimJob; t: number }[] = [];
    const done: SimJob[] = [];
    const advance = (j: SimJob, t: number) => {
      if (j.firstTokenAtMs === undefined) j.firstTokenAtMs = nowMs - t + 1000 / rate;
      const before = Math.ceil(j.generated);
      const left = j.outputTokens - j.generated;
      j.generated = Math.min(j.outputTokens, j.generated + (rate * t) / 1000);
      used += Math.ceil(j.generated) - before;
      if (j.generated >= j.outputTokens) {
        j.finishedAtMs = nowMs - t + (left / rate) * 1000;
        done.push(j);
      }
    };
    for (const j of s.running) {
      if (j.prefillLeftMs > 0) continue;
      const t = decodeFor.get(j) ?? dtMs;
      if (t <= 0) continue;
      const grow = Math.ceil(Math.min(j.outputTokens, j.generated + (rate * t) / 1000)) - Math.ceil(j.generated);
      // FIFO: a request does not overtake an older paused one.
      if (!blocked && used + grow <= s.budgetMax) {
        if (j.paused) changed = true;
        j.paused = false;
        advance(j, t);
        moved++;
      } else {
        blocked = true;
        if (!j.paused) changed = true;
        j.paused = true;
        pausedNow.push({ j, t });
      }
    }
    // Everyone would pause: the oldest keeps going (its KV overshoots the budget by its own growth).
    if (moved === 0 && pausedNow.length > 0) {
      const first = pausedNow[0]!;
      first.j.paused = false;
      advance(first.j, first.t);
    }
    if (done.length > 0) {
      s.running = s.running.filter((j) => !done.includes(j));
      ev.completed.push(...done);
      s.lastActiveMs = nowMs;
      this.#admit(s);
      changed = true;
    }
    return changed;
  }

  /**
   * The Mac leaves (disconnects): everything it loaded and ran is gone. Returns the requests it held, admitted
   * or waiting, for the coordinator to route again.
   */
  disconnect(): SimJob[] {
    const jobs: SimJob[] = [];
    for (const s of this.slots.values()) jobs.push(...s.running, ...s.waiting);
    this.slots.clear();
    this.#prefillQueue.length = 0;
    this.online = false;
    return jobs;
  }

  /** Heartbeat content: one slot per loaded model. */
  heartbeatSlots(): ModelSlot[] {
    return [...this.slots.values()].map((s) => {
      let paused = 0;
      for (const j of s.running) if (j.paused) paused++;
      return {
        model: s.model,
        state: s.readyAtMs > 0 ? "loading" : s.running.length > 0 ? "running" : "idle",
        numRunning: s.running.length,
        // Like model-slots.ts: requests paused for KV are reported as waiting.
        numWaiting: s.waiting.length + paused,
        maxConcurrency: this.maxConcurrency,
        // Older builds report no token budget: the coordinator falls back to memory (and Go to 400 kB/token).
        tokenBudgetUsed: this.spec.reportsTokenBudget === false ? 0 : this.#used(s),
        tokenBudgetMax: this.spec.reportsTokenBudget === false ? 0 : s.budgetMax,
        kvBytesPerToken: s.kvBytesPerToken,
        observedDecodeTps: s.soloTps,
        observedPrefillTps: s.prefillTps,
        modelLoadTimeMs: Math.round(s.loadMs),
      };
    });
  }

  /** The provider's max loadable weight now, padded GiB (consistent with its 3× rule; idle models evictable). */
  freeForLoadGb(): number {
    const busy = [...this.slots.values()].filter((s) => s.running.length + s.waiting.length > 0 || s.readyAtMs > 0);
    if (busy.length >= this.spec.maxModelSlots) return 0;
    return maxLoadableWeightsGb(this.spec.memoryGb) * 1.2;
  }
}
