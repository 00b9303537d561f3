/**
 * The provider port's TCP listener, in front of grpc-js: it bounds what a stranger can hold open before
 * registering anything. At most `maxConnections` connections in all and `maxPerAddress` from one client address
 * (an IPv4 address or an IPv6 /64, as the consumer edge counts failed API keys): past either, a new connection is
 * closed at once, counted in `provider.connections_refused{reason}`, and reported in one warn line per reason
 * every 10 s at most (a flood would otherwise be a line per connection), naming the setting to raise. Without the
 * per-address bound, one host could take every place and lock the real Macs out. Behind an L4 balancer that hides
 * client addresses every Mac has the balancer's address, and the operator must raise the per-address bound.
 */
import { createServer, type Server, type Socket } from "node:net";
import { boundConnections, connectionRefusals } from "../telemetry/connection-refusals.js";
import type { Logger } from "../util/logger.js";
import { throttleKey } from "../util/throttle-key.js";

export interface ProviderListenerOptions {
  /** Open connections at most (PROVIDER_MAX_CONNECTIONS). */
  maxConnections: number;
  /** Open connections from one client address at most (PROVIDER_MAX_CONNECTIONS_PER_ADDRESS). */
  maxPerAddress: number;
  log: Logger;
}

/** A listener handing each connection it keeps to `inject` (grpc-js's connection injector). */
export function createProviderListener(inject: (socket: Socket) => void, o: ProviderListenerOptions): Server {
  const { maxConnections, maxPerAddress } = o;
  const refuseOverAddress = refusals(o.log, "address", "PROVIDER_MAX_CONNECTIONS_PER_ADDRESS", maxPerAddress);
  // One entry per address with a connection open: at most maxConnections entries.
  const perAddress = new Map<string, number>();
  const listener = createServer((socket) => {
    const key = throttleKey(socket.remoteAddress ?? "unknown");
    const open = perAddress.get(key) ?? 0;
    if (open >= maxPerAddress) {
      refuseOverAddress(key);
      socket.destroy();
      return;
    }
    perAddress.set(key, open + 1);
    socket.once("close", () => {
      const left = (perAddress.get(key) ?? 1) - 1;
      if (left > 0) perAddress.set(key, left);
      else perAddress.delete(key);
    });
    inject(socket);
  });
  boundConnections(listener, maxConnections, refusals(o.log, "limit", "PROVIDER_MAX_CONNECTIONS", maxConnections));
  return listener;
}

/** The provider port's reporting for one bound (`provider.connections_refused{reason}`). */
function refusals(log: Logger, reason: "limit" | "address", setting: string, limit: number): (address: string) => void {
  const message = `provider connections refused: ${reason === "limit" ? "connection" : "per-address"} limit reached`;
  return connectionRefusals({ log, metric: "provider.connections_refused", reason, message, setting, limit });
}
