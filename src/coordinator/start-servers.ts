/**
 * Start-up's last fallible step: the consumer server and the providers' gRPC server start listening. If either
 * cannot (a port in use, most likely), what already runs is undone before the error propagates.
 */
import type { Config } from "../config/config.js";
import type { PostgresLedger } from "../ledger/postgres-ledger.js";
import { startGrpcServer, type GrpcServerHandle } from "../protocol/grpc-server.js";
import type { ProviderService } from "../protocol/provider-service.js";
import type { Logger } from "../util/logger.js";
import { openFileLimit } from "../util/open-file-limit.js";
import type { AliasSync } from "./alias-sync.js";
import type { ConsumerHttp } from "./consumer-http.js";

/** What {@link startServers} starts, and what it undoes on failure. */
export interface ServerParts {
  consumer: ConsumerHttp;
  providers: ProviderService;
  ledger: PostgresLedger;
  aliasSync: AliasSync;
  log: Logger;
}

/** Both servers, listening. */
export interface ListeningServers {
  httpPort: number;
  grpc: GrpcServerHandle;
}

/** Descriptors left for everything but the two ports' connections: PostgreSQL pools, NATS, files, DNS. */
export const DESCRIPTOR_RESERVE = 1_024;

/**
 * The warn line's fields when the two ports' connection bounds and {@link DESCRIPTOR_RESERVE} do not fit in the
 * open-file limit: a flood on either port could then take the descriptors PostgreSQL and the other port need, and
 * the bounds would not be what stops it. Undefined when they fit or the limit is unknown.
 */
export function descriptorShortfall(
  config: Pick<Config, "providerMaxConnections" | "httpMaxConnections">,
  limit: number | undefined,
): Record<string, number | string> | undefined {
  if (limit === undefined) return undefined;
  const needed = config.providerMaxConnections + config.httpMaxConnections + DESCRIPTOR_RESERVE;
  if (needed <= limit) return undefined;
  return {
    open_file_limit: limit,
    provider_max_connections: config.providerMaxConnections,
    http_max_connections: config.httpMaxConnections,
    reserve: DESCRIPTOR_RESERVE,
    fix: "raise the open-file limit (ulimit -n, systemd LimitNOFILE) or lower PROVIDER_MAX_CONNECTIONS / HTTP_MAX_CONNECTIONS",
  };
}

/** Listens on `config.httpPort` then `config.grpcPort`; on failure undoes the parts and rethrows. */
export async function startServers(config: Config, parts: ServerParts): Promise<ListeningServers> {
  const { server: http, prometheus } = parts.consumer;
  const shortfall = descriptorShortfall(config, openFileLimit());
  if (shortfall) parts.log.warn("connection bounds exceed the open-file limit", shortfall);
  try {
    const httpPort = await http.listen(config.httpPort, config.host, config.listenBacklog);
    const grpc = await startGrpcServer(parts.providers, {
      host: config.host,
      port: config.grpcPort,
      backlog: config.listenBacklog,
      maxConnections: config.providerMaxConnections,
      maxConnectionsPerAddress: config.providerMaxConnectionsPerAddress,
      idleConnectionMs: config.providerIdleConnectionMs,
      log: parts.log,
      keepaliveTimeMs: config.grpcKeepaliveMs,
    });
    return { httpPort, grpc };
  } catch (e) {
    // Undo what already runs (listener, session sweep, alias refresh, ledger background work).
    parts.providers.closeAll("coordinator failed to start");
    parts.aliasSync.stop();
    await http.stopListening();
    await parts.ledger.close();
    await prometheus?.close();
    throw e;
  }
}
