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

/** Descriptors left for everything but the two ports' connections: PostgreSQL pools, NATS, files, DNS. */
export const DESCRIPTOR_RESERVE = 1_024;

/**
 * The warn line's fields when the two ports' connection bounds and {@link DESCRIPTOR_RESERVE} do not fit in the
 * open-file limit: a flood on either port could then take the descriptors PostgreSQL and the other port need, and
 * the bounds would not be what stops it. Undefined when they fit or the limit is unknown.
 */
export function descriptorShortfall(
  bounds: { providerMaxConnections: number; httpMaxConnections: number },
  limit: number | undefined,
): Record<string, number | string> | undefined {
  if (limit === undefined) return undefined;
  const needed = bounds.providerMaxConnections + bounds.httpMaxConnections + DESCRIPTOR_RESERVE;
  if (needed <= limit) return undefined;
  return {
    open_file_limit: limit,
    provider_max_connections: bounds.providerMaxConnections,
    http_max_connections: bounds.httpMaxConnections,
    reserve: DESCRIPTOR_RESERVE,
    fix: "raise the open-file limit (ulimit -n, systemd LimitNOFILE) or lower PROVIDER_MAX_CONNECTIONS / HTTP_MAX_CONNECTIONS",
  };
}
