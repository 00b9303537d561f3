/**
 * A TCP proxy in front of PostgreSQL with an off switch: `outage(ms)` destroys every proxied connection and
 * stops listening for that long (new connections get ECONNREFUSED, as with a stopped server), then listens
 * again on the same port. This plays "PostgreSQL is down for 5 s" for the processes pointed at the proxy
 * without touching the machine's PostgreSQL, which other sessions share.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface PgOutageProxyOptions {
  /** Upstream PostgreSQL (default: host and port of TEST_DATABASE_URL, else 127.0.0.1:5432). */
  target?: { host: string; port: number };
  /** Port to listen on (default: a free one). */
  port?: number;
}

export interface PgOutageProxy {
  port: number;
  /** `url` (a PostgreSQL URL) with its host and port replaced by the proxy's. */
  urlFor(url: string): string;
  /** Proxied connections open now. */
  readonly openConnections: number;
  /** True during an outage. */
  readonly down: boolean;
  /** Cuts every connection and refuses new ones for `ms`; resolves when the proxy listens again. */
  outage(ms: number): Promise<void>;
  close(): Promise<void>;
}

function defaultTarget(): { host: string; port: number } {
  const env = process.env.TEST_DATABASE_URL;
  if (!env) return { host: "127.0.0.1", port: 5432 };
  const u = new URL(env);
  return { host: u.hostname || "127.0.0.1", port: Number(u.port || 5432) };
}

export async function startPgOutageProxy(o: PgOutageProxyOptions = {}): Promise<PgOutageProxy> {
  const target = o.target ?? defaultTarget();
  const pairs = new Set<[Socket, Socket]>();
  let down = false;
  let closed = false;

  const server: Server = createServer((client) => {
    const upstream = createConnection(target.port, target.host);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end);
    upstream.on("error", end);
    client.on("close", end);
    upstream.on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.removeListener("error", reject);
        resolve((server.address() as { port: number }).port);
      });
    });
  const stopListening = () => new Promise<void>((resolve) => server.close(() => resolve()));
  const cutAll = () => {
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    pairs.clear();
  };

  const port = await listen(o.port ?? 0);
  return {
    port,
    urlFor(url) {
      const u = new URL(url);
      u.hostname = "127.0.0.1";
      u.port = String(port);
      return u.toString();
    },
    get openConnections() {
      return pairs.size;
    },
    get down() {
      return down;
    },
    async outage(ms) {
      if (down) throw new Error("an outage is already under way");
      down = true;
      // Stop accepting first, so nothing slips in between the cut and the close.
      const stopped = stopListening();
      cutAll();
      await stopped;
      await new Promise((r) => setTimeout(r, ms));
      if (!closed) await listen(port);
      down = false;
    },
    async close() {
      closed = true;
      cutAll();
      if (server.listening) await stopListening();
    },
  };
}
