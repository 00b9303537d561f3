/**
 * One cell of the burst matrix: a closed loop of `concurrency` workers, each firing requests back to back (the next
 * starts as soon as the previous ends) until the cell's request count is used up or its duration has passed.
 * Requests in flight when the duration ends are allowed to finish, so the wall time covers every request counted.
 */
import { classifyFailure } from "./classify.js";
import type { SnapshotRef } from "./capacity-sampler.js";
import { sendChatRequest, type ChatRequestOptions, type RequestOutcome } from "./send-request.js";
import type { CellKey, CellResult, ErrorCorrelation, RequestRecord } from "./types.js";

/** When a cell ends: after `count` requests in total, or once `durationMs` has passed (no new requests start). */
export type CellStop = { kind: "requests"; count: number } | { kind: "duration"; durationMs: number };

/** Options of {@link runCell}. */
export interface RunCellOptions extends CellKey {
  baseUrl: string;
  apiKey: string | null;
  model: string;
  prompt: string;
  /** Client timeout per request, in milliseconds. */
  timeoutMs: number;
  stop: CellStop;
  /** The capacity snapshot of `model` to pair with a failure, as of `atMs` (when it ended). Default: none. */
  snapshotFor?: (model: string, atMs: number) => SnapshotRef;
  /** Called after every request, in completion order (for live progress). */
  onRequestDone?: (record: RequestRecord) => void;
  /** Stops starting new requests and aborts those in flight (Ctrl-C). */
  signal?: AbortSignal;
  /** Epoch milliseconds with sub-millisecond resolution. Default: performance time origin + now. */
  now?: () => number;
  /** The request function; replaceable in tests. Default: {@link sendChatRequest}. */
  send?: (o: ChatRequestOptions) => Promise<RequestOutcome>;
}

/** Epoch milliseconds with sub-millisecond resolution (Date.now() is too coarse for fast local endpoints). */
export const preciseNow = (): number => performance.timeOrigin + performance.now();

/** Runs one cell and returns every request record and error/snapshot pairing. */
export async function runCell(o: RunCellOptions): Promise<CellResult> {
  const now = o.now ?? preciseNow;
  const send = o.send ?? sendChatRequest;
  const startedAtMs = now();
  const requests: RequestRecord[] = [];
  const correlations: ErrorCorrelation[] = [];
  let started = 0;

  const mayStart = (): boolean => {
    if (o.signal?.aborted) return false;
    if (o.stop.kind === "requests") return started < o.stop.count;
    return now() - startedAtMs < o.stop.durationMs;
  };

  const worker = async (workerId: number): Promise<void> => {
    while (mayStart()) {
      const seq = started++;
      const out = await send({
        baseUrl: o.baseUrl,
        apiKey: o.apiKey,
        model: o.model,
        maxTokens: o.maxTokens,
        prompt: o.prompt,
        timeoutMs: o.timeoutMs,
        now,
        ...(o.signal ? { signal: o.signal } : {}),
      });
      const record = toRecord(seq, workerId, out);
      requests.push(record);
      if (record.errorClass) {
        const atMs = out.startMs + out.latencyMs;
        const snap = o.snapshotFor?.(o.model, atMs) ?? { sampleIndex: null, snapshot: "none", modelRow: null };
        correlations.push({
          cell: { maxTokens: o.maxTokens, concurrency: o.concurrency },
          seq,
          atMs,
          errorClass: record.errorClass,
          ...snap,
        });
      }
      o.onRequestDone?.(record);
    }
  };

  await Promise.all(Array.from({ length: o.concurrency }, (_, i) => worker(i)));
  requests.sort((a, b) => a.seq - b.seq);
  return {
    maxTokens: o.maxTokens,
    concurrency: o.concurrency,
    startedAtMs,
    wallMs: now() - startedAtMs,
    requests,
    correlations,
  };
}

/** Turns a measured outcome into the record kept in the report. */
export function toRecord(seq: number, worker: number, out: RequestOutcome): RequestRecord {
  const f = out.failure;
  return {
    seq,
    worker,
    startMs: out.startMs,
    ttfbMs: out.ttfbMs,
    ttftMs: out.ttftMs,
    latencyMs: out.latencyMs,
    status: out.status,
    ok: f === null,
    promptTokens: out.promptTokens,
    completionTokens: out.completionTokens,
    tokensSource: out.tokensSource,
    errorClass: f ? classifyFailure(f) : null,
    errorCode: f && (f.kind === "http" || f.kind === "in_band") ? (f.code ?? null) : null,
    errorMessage: f && f.kind !== "timeout" ? (f.message ?? null) : f ? "client timeout" : null,
  };
}
