/**
 * Polls the public capacity endpoint (`GET {base}/models/capacity`) on a fixed cadence so that every failure can
 * be paired with the fleet snapshot at the instant it happened: that pairing is what showed, in production, that
 * requests were shed while providers sat idle. A deployment without the endpoint (404) is recorded once as
 * "unavailable" and polling stops.
 */
import { systemClock, type Cancel, type Clock } from "../../util/clock.js";
import type { CapacityModelRow, CapacitySample, ErrorCorrelation } from "./types.js";

/** Options of {@link CapacitySampler}. */
export interface CapacitySamplerOptions {
  /** API base including the version path, e.g. "http://127.0.0.1:8080/v1". */
  baseUrl: string;
  /** Sent as a bearer token (the endpoint is public; the key is harmless and helps behind gateways). */
  apiKey: string | null;
  /** Time between poll starts, in milliseconds (the production test used 3,000). */
  intervalMs: number;
  /** Per-poll timeout in milliseconds. Default: min(intervalMs, 10,000). */
  pollTimeoutMs?: number;
  /** Schedules polls. Default: the system clock. */
  clock?: Clock;
  /** Timestamps for samples, epoch milliseconds. Default: `clock.nowMs`. */
  now?: () => number;
}

/** The snapshot part of an {@link ErrorCorrelation}. */
export type SnapshotRef = Pick<ErrorCorrelation, "sampleIndex" | "snapshot" | "modelRow">;

/** Periodic sampler of the capacity endpoint; keeps every sample in memory for the report. */
export class CapacitySampler {
  readonly #o: Required<Omit<CapacitySamplerOptions, "apiKey">> & { apiKey: string | null };
  readonly #samples: CapacitySample[] = [];
  #cancel: Cancel | null = null;
  #inflight: Promise<unknown> | null = null;
  #stopped = false;
  #unavailable = false;

  constructor(options: CapacitySamplerOptions) {
    const clock = options.clock ?? systemClock;
    this.#o = {
      baseUrl: options.baseUrl,
      apiKey: options.apiKey,
      intervalMs: options.intervalMs,
      pollTimeoutMs: options.pollTimeoutMs ?? Math.min(options.intervalMs, 10_000),
      clock,
      now: options.now ?? (() => clock.nowMs()),
    };
  }

  /** Every sample so far, in order. */
  get samples(): readonly CapacitySample[] {
    return this.#samples;
  }

  /** False once the endpoint answered 404. */
  get available(): boolean {
    return !this.#unavailable;
  }

  /** Takes a first sample now and then one every `intervalMs` until {@link stop}. */
  start(): void {
    this.#stopped = false;
    this.#tick();
  }

  /** Stops polling and waits for a poll in flight, so the sample list is final. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancel?.();
    this.#cancel = null;
    await this.#inflight;
  }

  /**
   * The latest usable snapshot for `model` as of `atMs` (default: now): the most recent successful poll taken at
   * or before it. An error is paired once its request has returned, and a poll can start and finish in between
   * (a busy loop): that later snapshot says nothing about the moment of the error.
   */
  snapshotFor(model: string, atMs = Infinity): SnapshotRef {
    let end = this.#samples.length;
    while (end > 0 && this.#samples[end - 1]!.atMs > atMs) end--;
    for (let i = end - 1; i >= 0; i--) {
      const s = this.#samples[i]!;
      if (s.kind === "ok") {
        return { sampleIndex: s.index, snapshot: "ok", modelRow: s.models.find((m) => m.id === model) ?? null };
      }
    }
    const last = this.#samples[end - 1];
    if (!last) return { sampleIndex: null, snapshot: "none", modelRow: null };
    return { sampleIndex: last.index, snapshot: last.kind === "unavailable" ? "unavailable" : "error", modelRow: null };
  }

  /** Polls once and records the sample. */
  async sampleOnce(): Promise<CapacitySample> {
    const index = this.#samples.length;
    const atMs = this.#o.now();
    let sample: CapacitySample;
    try {
      const headers: Record<string, string> = { accept: "application/json" };
      if (this.#o.apiKey) headers.authorization = `Bearer ${this.#o.apiKey}`;
      const res = await fetch(`${this.#o.baseUrl}/models/capacity`, {
        headers,
        signal: AbortSignal.timeout(this.#o.pollTimeoutMs),
      });
      const text = await res.text();
      if (res.status === 404) {
        this.#unavailable = true;
        sample = { kind: "unavailable", index, atMs, status: 404 };
      } else if (!res.ok) {
        sample = { kind: "error", index, atMs, message: `HTTP ${res.status}` };
      } else {
        sample = { kind: "ok", index, atMs, models: parseCapacity(text) };
      }
    } catch (err) {
      sample = { kind: "error", index, atMs, message: err instanceof Error ? err.message : String(err) };
    }
    this.#samples.push(sample);
    return sample;
  }

  #tick(): void {
    if (this.#stopped || this.#unavailable) return;
    const startedMs = this.#o.clock.nowMs();
    const p = this.sampleOnce().then(() => {
      if (this.#stopped || this.#unavailable) return;
      // Keep a fixed cadence between poll starts even when a poll is slow.
      const delayMs = Math.max(0, this.#o.intervalMs - (this.#o.clock.nowMs() - startedMs));
      this.#cancel = this.#o.clock.setTimeout(() => this.#tick(), delayMs);
    });
    this.#inflight = p;
  }
}

/** Parses the endpoint's body, keeping only numeric fields of each model row; throws on a malformed body. */
export function parseCapacity(text: string): CapacityModelRow[] {
  const body = JSON.parse(text) as { models?: unknown; data?: unknown };
  const list = Array.isArray(body.models) ? body.models : Array.isArray(body.data) ? body.data : null;
  if (!list) throw new Error("capacity body has no models array");
  return list.flatMap((m): CapacityModelRow[] => {
    if (!m || typeof m !== "object" || typeof (m as { id?: unknown }).id !== "string") return [];
    const row: CapacityModelRow = { id: (m as { id: string }).id };
    for (const [k, v] of Object.entries(m)) {
      if (k !== "id" && typeof v === "number" && Number.isFinite(v)) (row as unknown as Record<string, number>)[k] = v;
    }
    return [row];
  });
}
