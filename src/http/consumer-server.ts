/**
 * The consumer-facing HTTP server (REST routes and the Connect admin service on one port) with what a graceful
 * shutdown needs: a count of open requests, a draining mode that stops keep-alive reuse, and a wait for idle.
 * Slow and silent clients are cut by the timeouts in {@link ConsumerServerOptions}.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Clock } from "../util/clock.js";
import { boundConnections, connectionRefusals } from "../telemetry/connection-refusals.js";
import { listen } from "../util/listen.js";
import type { Logger } from "../util/logger.js";

/**
 * Connection timeouts (HTTP_* settings; defaults in src/config/config.ts). None of them cuts a long answer:
 * Node's request timeout covers receiving the request only, and the idle timeout spares a socket whose silence
 * is ours (a response waiting on a provider, or an SSE stream between chunks).
 */
export interface ConsumerServerOptions {
  /** Longest time to receive a request's headers (Node's `headersTimeout`); then 408 and close. */
  headersTimeoutMs: number;
  /** Longest time to receive a whole request, headers and body (Node's `requestTimeout`); then 408 and close. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /**
   * A socket with no traffic for this long is closed when the silence is the client's: a request body that
   * stalled, or a response the client stopped reading (its send buffer full).
   */
  idleSocketTimeoutMs: number;
  /**
   * After a response that closes the connection, how long the rest of an unread upload is still drained before
   * the socket is destroyed. Closing at once with unread bytes makes the kernel send a reset, which can
   * destroy the response in flight: the caller would never see its 401 or 413.
   */
  closeLingerMs: number;
  /**
   * Open connections at most; past it a new connection is closed at once, counted in
   * `http.connections_refused{reason="limit"}` and logged every 10 s at most. Unbounded when absent.
   */
  maxConnections?: number | undefined;
  /** Where refused connections are reported. */
  log?: Logger | undefined;
}

export class ConsumerServer {
  readonly #server: Server;
  readonly #clock: Clock;
  readonly #idleWaiters = new Set<() => void>();
  /** The request in progress on each socket, for the idle-timeout decision. */
  readonly #active = new WeakMap<Socket, { req: IncomingMessage; res: ServerResponse }>();
  #open = 0;
  #draining = false;
  #closed: Promise<void> | undefined;

  constructor(
    handler: (req: IncomingMessage, res: ServerResponse) => void,
    clock: Clock,
    options: ConsumerServerOptions,
  ) {
    this.#clock = clock;
    const closed = () => this.#requestClosed();
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      this.#open++;
      const socket = req.socket;
      this.#active.set(socket, { req, res });
      res.once("close", () => {
        closed();
        if (this.#active.get(socket)?.res === res) this.#active.delete(socket);
      });
      if (this.#draining) res.setHeader("connection", "close");
      handler(req, res);
    };
    this.#server = createServer(
      {
        headersTimeout: options.headersTimeoutMs,
        requestTimeout: options.requestTimeoutMs,
        // Node checks the two timeouts above on this period (default 30 s, which would let them run 30 s late).
        connectionsCheckingInterval: Math.max(
          100,
          Math.min(1_000, Math.floor(Math.min(options.headersTimeoutMs, options.requestTimeoutMs) / 4)),
        ),
      },
      onRequest,
    );
    // `Expect: 100-continue` is answered by the route, once the caller is authorised (see sendContinue).
    this.#server.on("checkContinue", onRequest);
    this.#server.keepAliveTimeout = options.keepAliveTimeoutMs;
    this.#server.timeout = options.idleSocketTimeoutMs;
    // node:http ends a `connection: close` response with socket.destroySoon(): FIN, then destroy as soon as it
    // is written. Ours lingers (reading and discarding) until the client closes its side or closeLingerMs pass.
    const linger = lingeringClose(options.closeLingerMs);
    this.#server.on("connection", (socket: Socket) => {
      socket.destroySoon = linger;
    });
    if (options.maxConnections !== undefined) {
      // No per-address bound here: an aggregator sends everything from a few addresses (and behind a proxy every
      // client has its address). The total keeps a flood of idle sockets from taking the process's descriptors,
      // which the provider port and PostgreSQL need too.
      const refuse = connectionRefusals({
        log: options.log,
        metric: "http.connections_refused",
        reason: "limit",
        message: "consumer connections refused: connection limit reached",
        setting: "HTTP_MAX_CONNECTIONS",
        limit: options.maxConnections,
      });
      boundConnections(this.#server, options.maxConnections, refuse);
    }
    // With a listener, node:http leaves every timed-out socket to us (including idle keep-alive ones).
    this.#server.on("timeout", (socket: Socket) => {
      if (this.#clientIsSilent(socket)) socket.destroy();
    });
  }

  /** Listens with an accept backlog of `backlog` (LISTEN_BACKLOG); resolves with the bound port. */
  async listen(port: number, host: string, backlog: number): Promise<number> {
    await listen(this.#server, host, port, backlog);
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

  /**
   * Whether a socket's silence is the client's doing: no request in progress (idle keep-alive), a request
   * body that stopped arriving, or a response the client does not read. A request waiting on a provider, or a
   * stream between chunks, is our silence and keeps its socket.
   */
  #clientIsSilent(socket: Socket): boolean {
    const a = this.#active.get(socket);
    if (a === undefined || a.res.writableEnded) return true;
    if (!a.req.complete) return true;
    return socket.writableLength > 0;
  }

  #requestClosed(): void {
    this.#open--;
    if (!this.#draining) return;
    // A keep-alive socket whose response began before the drain turns idle only after this tick.
    setImmediate(() => this.#server.closeIdleConnections());
    if (this.#open === 0) for (const w of this.#idleWaiters) w();
  }
}

/** A `destroySoon` for server sockets: half-close now, destroy once the client closes too or after `ms`. */
function lingeringClose(ms: number): (this: Socket) => void {
  return function (this: Socket) {
    if (this.writable) this.end();
    if (this.destroyed) return;
    const timer = setTimeout(() => this.destroy(), ms);
    timer.unref();
    this.once("close", () => clearTimeout(timer));
    // Discard whatever still arrives (node:http's parser drops the rest of a body nobody reads).
    this.resume();
  };
}
