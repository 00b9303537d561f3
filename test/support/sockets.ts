/**
 * Raw TCP clients for the connection-bound tests (provider-connections, consumer-connections): open a connection
 * and wait for it, and time how soon one is closed.
 */
import { connect, type Socket } from "node:net";

/** Resolves with how long after the call `onClose` fired, or undefined if it had not after `ms`. */
export function closedWithin(onClose: (cb: () => void) => void, ms: number): Promise<number | undefined> {
  const start = performance.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    onClose(() => {
      clearTimeout(timer);
      resolve(performance.now() - start);
    });
  });
}

/** A connection to 127.0.0.1:`port`, once connected; added to `opened` so the caller can destroy it. */
export async function openSocket(port: number, opened: Socket[]): Promise<Socket> {
  const s = connect(port, "127.0.0.1");
  s.on("error", () => {});
  opened.push(s);
  await new Promise<void>((resolve) => s.once("connect", () => resolve()));
  return s;
}
