/**
 * Bounded waiting on PostgreSQL: the request path never waits longer than it was told to (the ledger's lease
 * draw, a settle's durable wait, shutdown's flush; a rate-limit bucket exchange). On the injected {@link Clock},
 * so tests can drive it.
 */
import type { Clock } from "./clock.js";

/**
 * Resolves with `p`'s value, or with `"timeout"` if `p` has not settled within `ms` (on `clock`); rejects if `p`
 * rejects first. `p` itself is not cancelled: its work carries on and its result is simply not waited for.
 *
 * The timeout is decided in the event loop's check phase, after its poll phase: when the loop was busy past the
 * deadline (a CPU spike), timers run before pending socket reads, and PostgreSQL's reply that arrived in time
 * would otherwise lose to the deadline.
 */
export function timeout<T>(clock: Clock, p: Promise<T>, ms: number): Promise<T | "timeout"> {
  return new Promise((resolve, reject) => {
    const cancel = clock.setTimeout(() => setImmediate(() => resolve("timeout")), ms);
    p.then(
      (v) => (cancel(), resolve(v)),
      (e) => (cancel(), reject(e)),
    );
  });
}
