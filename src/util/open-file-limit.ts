/**
 * The process's open-file limit, where the platform tells it (Linux: /proc/self/limits). Node raises the soft
 * limit to the hard one at start-up, so this is what the process can actually hold: every connection on either
 * port, every PostgreSQL and NATS connection and every open file takes one descriptor from it.
 */
import { readFileSync } from "node:fs";

/** The soft "Max open files" of a /proc/<pid>/limits text; undefined when absent or unlimited. */
export function parseOpenFileLimit(limits: string): number | undefined {
  const line = limits.split("\n").find((l) => l.startsWith("Max open files"));
  const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0];
  const n = Number(soft);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** This process's open-file limit, or undefined off Linux (or when it cannot be read). */
export function openFileLimit(): number | undefined {
  try {
    return parseOpenFileLimit(readFileSync("/proc/self/limits", "utf8"));
  } catch {
    return undefined;
  }
}
