/**
 * Checks over the simulated fleet's execution log (one {@link ExecutionEntry} per InferenceRequest a Mac carried
 * out): the cluster's promise that a request never runs twice at once, and never more than once per attempt.
 * Pure, so a test can run it on a log gathered in process or read back from `coordinator fleet --exec-log`.
 */
import type { ExecutionEntry } from "./simulated-mac-options.js";

/** One broken promise, with the entries that show it. */
export interface ExecutionViolation {
  kind: "overlap" | "repeated_attempt" | "too_many_runs";
  requestId: string;
  entries: ExecutionEntry[];
}

export interface ExecutionCheckOptions {
  /**
   * Outcomes that did no work and are left out of the overlap and count checks (default: `rejected`, a refusal
   * sent at arrival: the coordinator may retry it elsewhere at once).
   */
  ignoreOutcomes?: readonly ExecutionEntry["outcome"][];
  /** Most runs one request id may have in all (the coordinator's MAX_DISPATCH_ATTEMPTS); unbounded when absent. */
  maxRunsPerRequest?: number;
}

/**
 * Finds every request id that ran on two Macs (or twice on one) at overlapping times, ran twice under one
 * attempt (same `traceparent` span), or ran more often than `maxRunsPerRequest`. Intervals that only touch
 * (one ends the ms the next starts) do not overlap. Empty when the log keeps every promise.
 */
export function checkExecutionLog(
  entries: readonly ExecutionEntry[],
  options: ExecutionCheckOptions = {},
): ExecutionViolation[] {
  const ignored = new Set(options.ignoreOutcomes ?? ["rejected"]);
  const byId = new Map<string, ExecutionEntry[]>();
  for (const e of entries) {
    if (ignored.has(e.outcome)) continue;
    let list = byId.get(e.requestId);
    if (!list) byId.set(e.requestId, (list = []));
    list.push(e);
  }
  const out: ExecutionViolation[] = [];
  for (const [requestId, list] of byId) {
    if (list.length === 1) continue;
    const sorted = [...list].sort((a, b) => a.startMs - b.startMs);
    // Sweep: an entry overlaps the run that reaches furthest among those that started before it.
    let furthest = sorted[0]!;
    for (const e of sorted.slice(1)) {
      if (e.startMs < furthest.endMs) out.push({ kind: "overlap", requestId, entries: [furthest, e] });
      if (e.endMs > furthest.endMs) furthest = e;
    }
    const bySpan = new Map<string, ExecutionEntry[]>();
    for (const e of list) {
      if (e.attemptSpanId === undefined) continue;
      const same = bySpan.get(e.attemptSpanId) ?? [];
      same.push(e);
      bySpan.set(e.attemptSpanId, same);
    }
    for (const same of bySpan.values())
      if (same.length > 1) out.push({ kind: "repeated_attempt", requestId, entries: same });
    if (options.maxRunsPerRequest !== undefined && list.length > options.maxRunsPerRequest)
      out.push({ kind: "too_many_runs", requestId, entries: sorted });
  }
  return out;
}

/** One line per violation, for an assertion message. */
export function describeViolations(violations: readonly ExecutionViolation[], limit = 10): string {
  const lines = violations
    .slice(0, limit)
    .map(
      (v) =>
        `${v.kind} ${v.requestId}: ${v.entries.map((e) => `${e.serial}@${e.coordinator} [${e.startMs}, ${e.endMs}] ${e.outcome}`).join("; ")}`,
    );
  if (violations.length > limit) lines.push(`... and ${violations.length - limit} more`);
  return lines.join("\n");
}

/** Parses `coordinator fleet --exec-log` output (JSON lines; blank lines skipped). */
export function parseExecutionLog(text: string): ExecutionEntry[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as ExecutionEntry);
}
