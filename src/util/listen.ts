/**
 * Listening with an explicit accept backlog. Node's default is 511: when thousands of clients connect at once
 * (every Mac reconnecting after a coordinator restart) and the event loop is busy with the first ones, the
 * kernel resets the connections past the queue and the clients back off for seconds. Go listens with the
 * kernel's maximum (net.core.somaxconn, 4,096 on current Linux); so does LISTEN_BACKLOG by default.
 */
import type { Server } from "node:net";

/** Listens on host:port with `backlog` (the kernel caps it); rejects with the listen error (e.g. EADDRINUSE). */
export function listen(server: Server, host: string, port: number, backlog: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port, backlog }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
