/**
 * A simulated provider (the Mac side): loads models under its own memory rule (weights × 3 ≤ memory),
 * admits requests against its own KV token budget (prompt + generated so far, growing as it generates),
 * queues new admissions when the budget or its concurrency limit is reached (never preempts), and decodes
 * with the concurrency law rate(n) = solo / (1 + 0.27(n − 1)). It produces heartbeat content in the same
 * shape the registry stores ({@link ModelSlot}).
 */
import type { ModelSlot, ProviderModel } from "../registry/types.js";
import { GIB } from "../scheduler/scheduler-options.js";
import type { MacSpec, ModelPerf } from "./scenario.js";

/** One request as the provider runs it. */
export interface SimJob {
  requestId: string;
  promptTokens: number;
  /** What the model will really generate (≤ max_tokens). */
  outputTokens: number;
  prefillLeftMs: number;
  generated: number;
  firstTokenAtMs: number | undefined;
}

interface SimSlot {
  model: string;
  readyAtMs: number;
  running: SimJob[];
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

const K = 0.27;
const OS_RESERVE_GB = 4;

export class SimProvider {
  readonly slots = new Map<string, SimSlot>();
  busyMs = 0;
  readonly busyMsByModel = new Map<string, number>();

  constructor(
    readonly id: string,
    readonly spec: MacSpec,
    readonly perf: ReadonlyMap<string, ModelPerf>,
    readonly facts: ReadonlyMap<string, ModelFacts>,
    readonly maxConcurrency: number,
  ) {}

  soloTps(model: string): number {
    return this.spec.memoryBandwidthGbs * (this.perf.get(model)?.decodeTpsPerGbs ?? 0.1);
  }

  prefillTps(model: string): number {
    return this.soloTps(model) * (this.perf.get(model)?.prefillToDecode ?? 10);
  }

  /** The provider's own load rule. */
  fitsMemory(model: string): boolean {
    const f = this.facts.get(model);
    return !!f && (f.sizeBytes / GIB) * 3 <= this.spec.memoryGb;
  }

  advertisedModels(): ProviderModel[] {
    return this.spec.models.map((id) => {
      const f = this.facts.get(id)!;
      return { id, sizeBytes: f.sizeBytes, quantization: "4bit", contextLength: f.contextLength, isVision: f.isVision, templateRenderOk: true };
    });
  }

  /** True when the Mac runs nothing and loads nothing. */
  isIdle(): boolean {
    for (const s of this.slots.values()) if (s.running.length + s.waiting.length > 0 || s.readyAtMs > 0) return false;
    return true;
  }

  /** Starts a load if the provider's own rules allow it; returns false when it refuses. */
  load(model: string, nowMs: number): boolean {
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
    const loadMs = p.loadBaseMs + (f.sizeBytes / 1e9 / p.loadGbPerS) * 1000;
    this.slots.set(model, {
      model,
      readyAtMs: nowMs + loadMs,
      running: [],
      waiting: [],
      lastActiveMs: nowMs,
      budgetMax: Math.floor(((this.spec.memoryGb * 0.9 - weightsGb - OS_RESERVE_GB) * GIB) / f.kvBytesPerToken),
      kvBytesPerToken: f.kvBytesPerToken,
      soloTps: this.soloTps(model),
      prefillTps: this.prefillTps(model),
      loadMs,
    });
    return true;
  }

  /** Accepts a request (loading the model if needed); false = load refused. */
  submit(model: string, job: SimJob, nowMs: number): boolean {
    if (!this.load(model, nowMs)) return false;
    const s = this.slots.get(model)!;
    s.waiting.push(job);
    s.lastActiveMs = nowMs;
    this.#admit(s);
    return true;
  }

  cancel(model: string, requestId: string): void {
    const s = this.slots.get(model);
    if (!s) return;
    s.running = s.running.filter((j) => j.requestId !== requestId);
    s.waiting = s.waiting.filter((j) => j.requestId !== requestId);
  }

  #used(s: SimSlot): number {
    let u = 0;
    for (const j of s.running) u += j.promptTokens + Math.floor(j.generated);
    return u;
  }

  /** FIFO admission against the provider's own budget and concurrency; never preempts. */
  #admit(s: SimSlot): void {
    if (s.readyAtMs > 0) return;
    while (s.waiting.length > 0 && s.running.length < this.maxConcurrency) {
      const j = s.waiting[0]!;
      if (s.running.length > 0 && this.#used(s) + j.promptTokens > s.budgetMax) break;
      s.waiting.shift();
      j.prefillLeftMs = (j.promptTokens / s.prefillTps) * 1000;
      s.running.push(j);
    }
  }

  /** Advances time by `dtMs`. */
  tick(nowMs: number, dtMs: number, idleUnloadMs: number): TickEvents {
    const ev: TickEvents = { completed: [], loaded: [], changed: false };
    let busy = false;
    for (const s of [...this.slots.values()]) {
      if (s.readyAtMs > 0) {
        if (nowMs >= s.readyAtMs) {
          s.readyAtMs = 0;
          ev.loaded.push(s.model);
          ev.changed = true;
          this.#admit(s);
        } else {
          continue;
        }
      }
      const n = s.running.length;
      if (n === 0) {
        if (s.waiting.length === 0 && nowMs - s.lastActiveMs >= idleUnloadMs) {
          this.slots.delete(s.model);
          ev.changed = true;
        }
        continue;
      }
      busy = true;
      this.busyMsByModel.set(s.model, (this.busyMsByModel.get(s.model) ?? 0) + dtMs);
      const rate = s.soloTps / (1 + K * (n - 1));
      const done: SimJob[] = [];
      for (const j of s.running) {
        let t = dtMs;
        if (j.prefillLeftMs > 0) {
          const used = Math.min(t, j.prefillLeftMs);
          j.prefillLeftMs -= used;
          t -= used;
        }
        if (j.prefillLeftMs <= 0 && t > 0) {
          if (j.firstTokenAtMs === undefined) j.firstTokenAtMs = nowMs - t + 1000 / rate;
          j.generated += (rate * t) / 1000;
          if (j.generated >= j.outputTokens) done.push(j);
        }
      }
      if (done.length > 0) {
        s.running = s.running.filter((j) => !done.includes(j));
        for (const j of done) j.generated = j.outputTokens;
        ev.completed.push(...done);
        ev.changed = true;
        s.lastActiveMs = nowMs;
        this.#admit(s);
      }
    }
    if (busy) this.busyMs += dtMs;
    return ev;
  }

  /** Heartbeat content: one slot per loaded model. */
  heartbeatSlots(): ModelSlot[] {
    return [...this.slots.values()].map((s) => ({
      model: s.model,
      state: s.readyAtMs > 0 ? "loading" : s.running.length > 0 ? "running" : "idle",
      numRunning: s.running.length,
      numWaiting: s.waiting.length,
      maxConcurrency: this.maxConcurrency,
      // Older builds report no token budget: the coordinator falls back to memory (and Go to 400 kB/token).
      tokenBudgetUsed: this.spec.reportsTokenBudget === false ? 0 : this.#used(s),
      tokenBudgetMax: this.spec.reportsTokenBudget === false ? 0 : s.budgetMax,
      kvBytesPerToken: s.kvBytesPerToken,
      observedDecodeTps: s.soloTps,
      observedPrefillTps: s.prefillTps,
      modelLoadTimeMs: Math.round(s.loadMs),
    }));
  }

  /** The provider's max loadable weight now, padded GiB (consistent with its 3× rule; idle models evictable). */
  freeForLoadGb(): number {
    const busy = [...this.slots.values()].filter((s) => s.running.length + s.waiting.length > 0 || s.readyAtMs > 0);
    if (busy.length >= this.spec.maxModelSlots) return 0;
    return (this.spec.memoryGb / 3) * 1.2;
  }
}
