/**
 * Reporting for a listener that closes connections past a bound: each refusal is counted in a metric, and an
 * operator gets one warn line per bound every {@link REFUSAL_LOG_INTERVAL_MS} at most (a flood would otherwise be
 * a line per connection) with how many were refused since the last line, the last address refused, the limit
 * and the setting to raise. Used by the provider port (protocol/provider-listener.ts) and the consumer port
 * (http/consumer-server.ts).
 */
import type { Server } from "node:net";
import type { Logger } from "../util/logger.js";
import { throttleKey } from "../util/throttle-key.js";
import { count } from "./metrics.js";

/** Refused connections are logged at most this often per bound. */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;

export interface ConnectionRefusalsOptions {
  log: Logger | undefined;
  /** Counter incremented per refusal, tagged with `reason`. */
  metric: string;
  reason: string;
  /** The warn line's message. */
  message: string;
  /** The setting an operator would raise, and its value. */
  setting: string;
  limit: number;
}

/**
 * Closes `server`'s connections past `max` open at once (node's `maxConnections`) and reports each with `refuse`,
 * keyed by its client address ({@link throttleKey}).
 */
export function boundConnections(server: Server, max: number, refuse: (address: string) => void): void {
  server.maxConnections = max;
  server.on("drop", (d) => refuse(throttleKey(d?.remoteAddress ?? "unknown")));
}

/** Returns the function to call with the client address of each refused connection. */
export function connectionRefusals(o: ConnectionRefusalsOptions): (address: string) => void {
  let since = 0;
  let lastLogMs = -Infinity;
  return (address) => {
    count(o.metric, { reason: o.reason });
    since++;
    const now = performance.now();
    if (now - lastLogMs < REFUSAL_LOG_INTERVAL_MS) return;
    lastLogMs = now;
    o.log?.warn(o.message, { setting: o.setting, limit: o.limit, refused_since_last_line: since, address });
    since = 0;
  };
}
