/**
 * The grpc-js server for provider streams: keepalive so a frozen Mac is noticed, message-size limits, and a
 * decoder that turns bytes that are not a ProviderMessage into a marker frame (grpc-js would otherwise end the
 * stream with a bare INTERNAL the coordinator never hears about). The same port serves `grpc.health.v1.Health`
 * and server reflection (grpc-introspection.ts).
 */
import * as grpc from "@grpc/grpc-js";
import { ProviderService as ProviderServiceDesc } from "../../gen/coordinator/provider/v1/provider_pb.js";
import { addIntrospectionServices } from "./grpc-introspection.js";
import { grpcServiceDefinition } from "./grpc-service.js";
import { decodeOrMalformed } from "./provider-message-decoder.js";
import type { ProviderService } from "./provider-service.js";

export interface GrpcServerOptions {
  host?: string;
  port: number;
  /** Server keepalive ping interval; a frozen provider is detected within about time + timeout. Default 5,000 ms. */
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  /** Max message size both ways. Default 16 MiB (bodies carry images). */
  maxMessageBytes?: number;
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
  });
  server.addService(grpcServiceDefinition(ProviderServiceDesc, { requestDeserialize: decodeOrMalformed }), {
    connect: service.connect,
  });
  const health = addIntrospectionServices(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${o.host ?? "0.0.0.0"}:${o.port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    port,
    setServing: (serving) => health.setServing(serving),
    close: () =>
      new Promise<void>((resolve) => {
        // Health watchers hear NOT_SERVING before their streams are cut.
        health.setServing(false);
        service.closeAll("coordinator shutting down");
        const force = setTimeout(() => server.forceShutdown(), 2_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
