/**
 * The consumer-facing HTTP server (REST routes and the Connect admin service on one port) with what a graceful
 * shutdown needs: a count of open requests, a draining mode that stops keep-alive reuse, and a wait for idle.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Clock } from "../util/clock.js";

export class ConsumerServer {
  readonly #server: Server;
  readonly #clock: Clock;
  readonly #idleWaiters = new Set<() => void>();
  #open = 0;
  #draining = false;
  #closed: Promise<void> | undefined;

  constructor(handler: (req: IncomingMessage, res: ServerResponse) => void, clock: Clock) {
    this.#clock = clock;
    const closed = () => this.#requestClosed();
    this.#server = createServer((req, res) => {
      this.#open++;
      res.once("close", closed);
      if (this.#draining) res.setHeader("connection", "close");
      handler(req, res);
    });
    // Longer than the usual load balancer idle timeout (60 s), so the balancer, not us, closes idle sockets.
    this.#server.keepAliveTimeout = 65_000;
  }

  /** Listens; resolves with the bound port. */
  async listen(port: number, host: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    return (this.#server.address() as AddressInfo).port;
  }

  /** HTTP requests whose response has not closed yet (streams, and responses waiting on their settlement). */
  get openRequests(): number {
    return this.#open;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /**
   * From now on every response carries `connection: close`, and keep-alive sockets are closed as soon as they
   * are idle, so clients reconnect (through the load balancer, to another replica). Still listening: work that
   * arrives before the balancer noticed is served.
   */
  startDraining(): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#server.closeIdleConnections();
  }

  /**
   * Resolves true once no request is open, or false after `ms`. Call after {@link startDraining}: only then are
   * closing responses watched for the count reaching zero (the hot path pays nothing for it otherwise).
   */
  untilIdle(ms: number): Promise<boolean> {
    if (!this.#draining) throw new Error("untilIdle() needs startDraining() first");
    if (this.#open === 0) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const done = (idle: boolean) => {
        cancel();
        this.#idleWaiters.delete(onIdle);
        resolve(idle);
      };
      const onIdle = () => done(true);
      const cancel = this.#clock.setTimeout(() => done(false), ms);
      this.#idleWaiters.add(onIdle);
    });
  }

  /** Stops listening; resolves once every connection has ended (see {@link closeAllConnections}). */
  stopListening(): Promise<void> {
    return (this.#closed ??= new Promise<void>((resolve) => this.#server.close(() => resolve())));
  }

  /** Cuts every connection, open responses included: the last step of a shutdown. */
  closeAllConnections(): void {
    this.#server.closeAllConnections();
  }

  #requestClosed(): void {
    this.#open--;
    if (!this.#draining) return;
    // A keep-alive socket whose response began before the drain turns idle only after this tick.
    setImmediate(() => this.#server.closeIdleConnections());
    if (this.#open === 0) for (const w of this.#idleWaiters) w();
  }
}
