/**
 * The consumer side: one HTTP server carrying the REST routes (`/v1/*`), the admin Connect service behind its
 * gate, and, when enabled, the Prometheus endpoint. Built here; it listens in the start-up step.
 */
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { adminGate, adminServicePathPrefix } from "../admin/admin-gate.js";
import { registerAdminService, type AdminServiceDeps } from "../admin/admin-service.js";
import type { Config } from "../config/config.js";
import { ConsumerServer } from "../http/consumer-server.js";
import { restHandler, type RouteDeps } from "../http/routes.js";
import { createPrometheusEndpoint, type PrometheusEndpoint } from "../telemetry/prometheus.js";
import type { Clock } from "../util/clock.js";

/** The consumer server and the endpoint it may carry, which closes separately. */
export interface ConsumerHttp {
  readonly server: ConsumerServer;
  /** Present when `METRICS_PROMETHEUS=on`. */
  readonly prometheus: PrometheusEndpoint | undefined;
}

/** Builds the consumer server (not yet listening). */
export function createConsumerHttp(
  config: Config,
  clock: Clock,
  routeDeps: RouteDeps,
  admin: Omit<AdminServiceDeps, "adminKey">,
): ConsumerHttp {
  const adminKey = config.adminKey ?? "";
  const rest = restHandler(routeDeps);
  const connect = connectNodeAdapter({
    routes: (router) => registerAdminService(router, { adminKey, ...admin }),
    // An admin typo (an unknown field, `"tier": "GOLD"`) is an error, not silently a default.
    jsonOptions: { ignoreUnknownFields: false },
    // A body sent without Content-Length is bounded here; a declared one is refused earlier, by adminGate.
    readMaxBytes: config.adminMaxBodyBytes,
    // The REST routes only serve HTTP/1.1 (the server is node:http), so the handler's narrower types hold.
    fallback: rest as unknown as NonNullable<Parameters<typeof connectNodeAdapter>[0]["fallback"]>,
  });
  // `/v1/*` goes straight to the REST routes: Connect paths are `/<package>.<Service>/<Method>`, and skipping the
  // adapter's own routing saves its per-request work on every inference call.
  // The admin key and the body limit are checked from the headers, before the adapter reads any body.
  const gated = adminGate(
    { adminKey, pathPrefixes: [adminServicePathPrefix], maxBodyBytes: config.adminMaxBodyBytes },
    connect,
  );
  // METRICS_PROMETHEUS=on: `GET /metrics` on this port (unauthenticated, so off by default).
  const prometheus = config.metricsPrometheus ? createPrometheusEndpoint() : undefined;
  const server = new ConsumerServer(
    (req, res) =>
      prometheus && req.url === "/metrics"
        ? prometheus.handle(req, res)
        : req.url?.startsWith("/v1/")
          ? rest(req, res)
          : gated(req, res),
    clock,
    {
      headersTimeoutMs: config.httpHeadersTimeoutMs,
      requestTimeoutMs: config.httpRequestTimeoutMs,
      keepAliveTimeoutMs: config.httpKeepAliveTimeoutMs,
      idleSocketTimeoutMs: config.httpIdleSocketTimeoutMs,
      closeLingerMs: config.httpCloseLingerMs,
      maxConnections: config.httpMaxConnections,
      log: routeDeps.logger,
    },
  );
  return { server, prometheus };
}
