/**
 * Structured logs: one JSON object per line (pino), on stderr unless a `write` function is given, filtered by
 * level. Every line has `timestamp` (ISO 8601, a field Datadog's log pipeline parses as the event date),
 * `level` as a label (`"info"`), `msg`, the fields of the enclosing log scope (./log-context.ts: a consumer
 * request's `request_id`, `trace_id`, `span_id`, `dd.trace_id`, `dd.span_id`), then the caller's fields.
 */
import { pino } from "pino";
import { currentLogFields } from "./log-context.js";

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const levels = new Set<string>(["debug", "info", "warn", "error"]);

/**
 * A logger at `level` (an unknown level reads as `info`). `write` receives each line without its newline
 * (default: stderr, synchronously, so the last lines before a crash are not lost).
 */
export function createLogger(level: string, write?: (line: string) => void): Logger {
  const destination = write
    ? { write: (s: string) => write(s.endsWith("\n") ? s.slice(0, -1) : s) }
    : pino.destination({ fd: 2, sync: true });
  const p = pino(
    {
      level: levels.has(level) ? level : "info",
      base: null, // no pid/hostname: the agent adds the host
      messageKey: "msg",
      timestamp: () => `,"timestamp":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
      mixin: () => currentLogFields(),
    },
    destination,
  );
  const emit = (lvl: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (!p.isLevelEnabled(lvl)) return;
    // bigint as a string, as before (pino would write a bare number, which JSON readers round).
    p[lvl](fields ? stringifyBigints(fields) : {}, msg);
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

function stringifyBigints(fields: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v !== "bigint") continue;
    out ??= { ...fields };
    out[k] = v.toString();
  }
  return out ?? fields;
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
