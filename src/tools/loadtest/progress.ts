/**
 * Live progress for one cell at a time on stderr: on a TTY one line redrawn in place (`\r`), otherwise a plain
 * line every few seconds (CI logs). The line formatting is a pure function so it can be tested.
 */
import { percentile, formatDurationMs } from "./stats.js";
import type { CellStop } from "./run-cell.js";
import type { RequestRecord } from "./types.js";

/** What one progress line shows. */
export interface ProgressState {
  label: string;
  done: number;
  /** Total requests in requests mode; null in duration mode. */
  total: number | null;
  elapsedMs: number;
  /** The cell duration in duration mode; null in requests mode. */
  durationMs: number | null;
  errors: number;
  /** Current median latency of successful requests. */
  p50Ms: number | null;
  /** Completion tokens so far divided by elapsed time. */
  tokPerS: number;
}

/** Formats one progress line, e.g. `512x8   [#######.....]  12/20 err 1 p50 1.2s 340 tok/s 4.1s`. */
export function formatProgressLine(s: ProgressState, barWidth = 20): string {
  const fraction =
    s.total !== null ? s.done / Math.max(1, s.total) : Math.min(1, s.elapsedMs / Math.max(1, s.durationMs ?? 1));
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * barWidth);
  const bar = `[${"#".repeat(filled)}${".".repeat(barWidth - filled)}]`;
  const count = s.total !== null ? `${s.done}/${s.total}` : `${s.done} done`;
  const draining = s.durationMs !== null && s.elapsedMs >= s.durationMs ? " (draining)" : "";
  return (
    `${s.label.padEnd(12)} ${bar} ${count} err ${s.errors} p50 ${formatDurationMs(s.p50Ms)} ` +
    `${Math.round(s.tokPerS)} tok/s ${(s.elapsedMs / 1000).toFixed(1)}s${draining}`
  );
}

/** The stream progress is written to (stderr in the CLI). */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

/** Options of {@link CellProgress}. */
export interface CellProgressOptions {
  stream: ProgressStream;
  label: string;
  stop: CellStop;
  /** Redraw period on a TTY, in milliseconds. Default 250. */
  ttyIntervalMs?: number;
  /** Line period when not a TTY, in milliseconds. Default 5,000. */
  plainIntervalMs?: number;
  now?: () => number;
}

/** Progress of one running cell; call {@link record} per finished request and {@link finish} at the end. */
export class CellProgress {
  readonly #o: CellProgressOptionsFilled;
  readonly #startMs: number;
  readonly #latencies: number[] = [];
  #done = 0;
  #errors = 0;
  #tokens = 0;
  #timer: NodeJS.Timeout | null;

  constructor(options: CellProgressOptions) {
    this.#o = {
      ttyIntervalMs: 250,
      plainIntervalMs: 5_000,
      now: Date.now,
      ...options,
    };
    this.#startMs = this.#o.now();
    const tty = this.#o.stream.isTTY === true;
    this.#timer = setInterval(() => this.#draw(false), tty ? this.#o.ttyIntervalMs : this.#o.plainIntervalMs);
    this.#timer.unref();
    if (tty) this.#draw(false);
  }

  record(r: RequestRecord): void {
    this.#done++;
    this.#tokens += r.completionTokens;
    if (r.ok) this.#latencies.push(r.latencyMs);
    else this.#errors++;
  }

  /** The current state (for the line and for tests). */
  state(): ProgressState {
    const elapsedMs = this.#o.now() - this.#startMs;
    return {
      label: this.#o.label,
      done: this.#done,
      total: this.#o.stop.kind === "requests" ? this.#o.stop.count : null,
      elapsedMs,
      durationMs: this.#o.stop.kind === "duration" ? this.#o.stop.durationMs : null,
      errors: this.#errors,
      p50Ms: percentile(this.#latencies, 50),
      tokPerS: elapsedMs > 0 ? this.#tokens / (elapsedMs / 1000) : 0,
    };
  }

  /** Stops redrawing and writes the final line. */
  finish(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#draw(true);
  }

  #draw(final: boolean): void {
    const line = formatProgressLine(this.state());
    if (this.#o.stream.isTTY) this.#o.stream.write(`\r${line}\x1b[K${final ? "\n" : ""}`);
    else this.#o.stream.write(`${line}\n`);
  }
}

type CellProgressOptionsFilled = Required<CellProgressOptions>;
