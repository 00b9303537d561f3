/**
 * Bounded waiting for the ledger: the request path never waits on PostgreSQL longer than it was told to (a lease
 * draw, a settle's durable wait, shutdown's flush). On the injected {@link Clock}, so tests can drive it.
 */
import type { Clock } from "../util/clock.js";

/**
 * Resolves with `p`'s value, or with `"timeout"` if `p` has not settled within `ms` (on `clock`); rejects if `p`
 * rejects first. `p` itself is not cancelled: its work carries on and its result is simply not waited for.
 */
export function timeout<T>(clock: Clock, p: Promise<T>, ms: number): Promise<T | "timeout"> {
  return new Promise((resolve, reject) => {
    const cancel = clock.setTimeout(() => resolve("timeout"), ms);
    p.then(
      (v) => (cancel(), resolve(v)),
      (e) => (cancel(), reject(e)),
    );
  });
}
