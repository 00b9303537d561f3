/**
 * The grpc-js server for provider streams: keepalive so a frozen Mac is noticed, message-size limits, and a
 * decoder that turns bytes that are not a ProviderMessage into a marker frame (grpc-js would otherwise end the
 * stream with a bare INTERNAL the coordinator never hears about). The same port serves `grpc.health.v1.Health`
 * and server reflection (grpc-introspection.ts).
 *
 * The port is our own listener handing each connection to grpc-js, not grpc-js's `bindAsync`: that one listens
 * with node's default accept backlog (511), and when thousands of Macs reconnect at once (a coordinator restart)
 * the kernel resets every connection past it while the event loop is busy registering the ones before. The
 * capacity bench lost 700–1,500 of 10,000 connects that way and held 9,088–9,819 streams; with 4,096 all.
 *
 * Owning the listener also bounds what a stranger can hold open before registering anything: connections in all
 * and per address (provider-listener.ts), and a connection with no stream open for `idleConnectionMs` is closed.
 * An HTTP/2 client answers keepalive pings, so without the idle bound one that never opens a stream was held
 * forever.
 */
import type { AddressInfo } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { ProviderService as ProviderServiceDesc } from "../../gen/coordinator/provider/v1/provider_pb.js";
import { listen } from "../util/listen.js";
import type { Logger } from "../util/logger.js";
import { addIntrospectionServices } from "./grpc-introspection.js";
import { grpcServiceDefinition } from "./grpc-service.js";
import { createProviderListener } from "./provider-listener.js";
import { decodeOrMalformed } from "./provider-message-decoder.js";
import type { ProviderService } from "./provider-service.js";

/**
 * HTTP/2 streams one provider connection may have open at once, advertised as SETTINGS_MAX_CONCURRENT_STREAMS: a
 * conforming client holds further streams back, and nghttp2 ends a stream opened past it (or, once the setting
 * is acknowledged, the whole connection). A Mac needs one Connect stream, plus a health watch or a
 * reflection call now and then; 100 is HTTP/2's recommended floor, and without a bound one connection could
 * open streams (each a session waiting to register) until the process ran out of memory.
 */
export const PROVIDER_MAX_STREAMS_PER_CONNECTION = 100;

export interface GrpcServerOptions {
  host?: string;
  port: number;
  /** Server keepalive ping interval; a frozen provider is detected within about time + timeout. Default 5,000 ms. */
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  /** Max message size both ways. Default 16 MiB (bodies carry images). */
  maxMessageBytes?: number;
  // The bounds below are settings (LISTEN_BACKLOG, PROVIDER_MAX_CONNECTIONS, PROVIDER_MAX_CONNECTIONS_PER_ADDRESS,
  // PROVIDER_IDLE_CONNECTION_MS): their defaults live in the settings table only.
  /** Connections the kernel queues before we accept them (capped by the OS, net.core.somaxconn). */
  backlog: number;
  /** Open connections at most; past it a new connection is closed at once. */
  maxConnections: number;
  /** Open connections from one client address (IPv6: its /64) at most. */
  maxConnectionsPerAddress: number;
  /** A connection with no stream open for this long is closed. */
  idleConnectionMs: number;
  /** Where a refused connection is reported (one warn line per 10 s at most). */
  log: Logger;
}

/** The running provider server. */
export interface GrpcServerHandle {
  port: number;
  /** SERVING (the start state) or NOT_SERVING on `grpc.health.v1.Health`, for "" and ProviderService alike. */
  setServing(serving: boolean): void;
  /** Reports NOT_SERVING, ends every provider stream, and shuts the server down (forced after 2 s). */
  close(): Promise<void>;
}

/** Starts the grpc-js server for providers; resolves with the bound port. */
export async function startGrpcServer(service: ProviderService, o: GrpcServerOptions): Promise<GrpcServerHandle> {
  const maxBytes = o.maxMessageBytes ?? 16 * 1024 * 1024;
  const server = new grpc.Server({
    "grpc.keepalive_time_ms": o.keepaliveTimeMs ?? 5_000,
    "grpc.keepalive_timeout_ms": o.keepaliveTimeoutMs ?? 3_000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.http2.min_ping_interval_without_data_ms": 1_000,
    "grpc.max_receive_message_length": maxBytes,
    "grpc.max_send_message_length": maxBytes,
    "grpc.max_connection_idle_ms": o.idleConnectionMs,
    "grpc.max_concurrent_streams": PROVIDER_MAX_STREAMS_PER_CONNECTION,
  });
  server.addService(grpcServiceDefinition(ProviderServiceDesc, { requestDeserialize: decodeOrMalformed }), {
    connect: service.connect,
  });
  const health = addIntrospectionServices(server);
  const listener = createProviderListener(
    server.createConnectionInjector(grpc.ServerCredentials.createInsecure()).injectConnection,
    { maxConnections: o.maxConnections, maxPerAddress: o.maxConnectionsPerAddress, log: o.log },
  );
  await listen(listener, o.host ?? "0.0.0.0", o.port, o.backlog);
  const port = (listener.address() as AddressInfo).port;
  return {
    port,
    setServing: (serving) => health.setServing(serving),
    close: () =>
      new Promise<void>((resolve) => {
        // Health watchers hear NOT_SERVING before their streams are cut.
        health.setServing(false);
        listener.close();
        service.closeAll("coordinator shutting down");
        const force = setTimeout(() => server.forceShutdown(), 2_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
