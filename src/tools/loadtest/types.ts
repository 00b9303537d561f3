/**
 * Data shapes shared by the load-test client: one record per request, one result per matrix cell, one sample per
 * capacity poll. Everything here is plain JSON-serialisable data so the JSON report is just these objects.
 */
import type { ErrorClass } from "./classify.js";

/** One row of `GET {base}/models/capacity` (the coordinator's public capacity endpoint). */
export interface CapacityModelRow {
  id: string;
  routable_providers?: number;
  warm_providers?: number;
  cold_providers?: number;
  active_requests?: number;
  queued_requests?: number;
  queue_limit?: number;
  aggregate_tps?: number;
  estimated_ttft_ms?: number;
  token_budget_remaining?: number;
  token_budget_total?: number;
}

/**
 * One poll of the capacity endpoint. `unavailable` means the deployment has no such endpoint (404): the sampler
 * stops polling after it. `error` is a failed poll (network, 5xx, bad JSON) and polling continues.
 */
export type CapacitySample =
  | { kind: "ok"; index: number; atMs: number; models: CapacityModelRow[] }
  | { kind: "unavailable"; index: number; atMs: number; status: number }
  | { kind: "error"; index: number; atMs: number; message: string };

/** Identifies a matrix cell. */
export interface CellKey {
  maxTokens: number;
  concurrency: number;
}

/** The summary kept for every request (all times in milliseconds; `startMs` is epoch time, the rest relative). */
export interface RequestRecord {
  /** Sequence number within the cell, in start order. */
  seq: number;
  worker: number;
  startMs: number;
  /** Time to the first SSE event (or the first body byte of a non-streamed answer); null when none arrived. */
  ttfbMs: number | null;
  /** Time to the first non-empty content (or reasoning) delta; null when none arrived. */
  ttftMs: number | null;
  /** Start to the end of the body, or to the failure. */
  latencyMs: number;
  /** HTTP status; null when no response arrived (network error, timeout before headers). */
  status: number | null;
  ok: boolean;
  promptTokens: number;
  completionTokens: number;
  /** Where `completionTokens` came from: the final usage chunk, or counted content deltas. */
  tokensSource: "usage" | "counted";
  errorClass: ErrorClass | null;
  /** The error `code` from the body, when there was one. */
  errorCode: string | null;
  errorMessage: string | null;
}

/** A failure paired with the latest capacity snapshot at the instant it happened. */
export interface ErrorCorrelation {
  cell: CellKey;
  seq: number;
  atMs: number;
  errorClass: ErrorClass;
  /** Index into the capacity samples, or null when no sample had been taken yet. */
  sampleIndex: number | null;
  /** "ok" when a snapshot existed, otherwise why not. */
  snapshot: "ok" | "unavailable" | "error" | "none";
  /** The capacity row of the model under test in that snapshot (null when absent). */
  modelRow: CapacityModelRow | null;
}

/** Everything measured for one cell. */
export interface CellResult extends CellKey {
  startedAtMs: number;
  /** Cell start to the last request's end. */
  wallMs: number;
  requests: RequestRecord[];
  correlations: ErrorCorrelation[];
}
