/**
 * Start-up's last fallible step: the consumer server and the providers' gRPC server start listening. If either
 * cannot (a port in use, most likely), what already runs is undone before the error propagates.
 */
import type { Config } from "../config/config.js";
import type { PostgresLedger } from "../ledger/postgres-ledger.js";
import { startGrpcServer, type GrpcServerHandle } from "../protocol/grpc-server.js";
import type { ProviderService } from "../protocol/provider-service.js";
import type { Logger } from "../util/logger.js";
import { descriptorShortfall } from "../util/open-file-limit.js";
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

/**
 * Listens on `config.httpPort` then `config.grpcPort`; on failure undoes the parts and rethrows. First, one warn
 * line if the two ports' connection bounds do not fit in the open-file limit `fileLimit` (util/open-file-limit.ts).
 */
export async function startServers(
  config: Config,
  parts: ServerParts,
  fileLimit: number | undefined,
): Promise<ListeningServers> {
  const { server: http, prometheus } = parts.consumer;
  const shortfall = descriptorShortfall(config, fileLimit);
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
