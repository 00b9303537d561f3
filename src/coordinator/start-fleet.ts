/**
 * The fleet this coordinator routes over: its own Macs (the default), or, with `CLUSTER` set, every Mac of the
 * cluster through NATS (cluster/nats-fleet.ts).
 */
import { inProcessFleet, type Fleet } from "../cluster/fleet.js";
import { startNatsFleet } from "../cluster/nats-fleet.js";
import type { Config } from "../config/config.js";
import type { ProviderService } from "../protocol/provider-service.js";
import type { ProviderRegistry } from "../registry/provider-registry.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";
import type { SchedulerBinding } from "./scheduler-binding.js";

export interface FleetDeps {
  registry: ProviderRegistry;
  providers: ProviderService;
  scheduler: SchedulerBinding;
  clock: Clock;
  log: Logger;
}

export function startFleet(config: Config, deps: FleetDeps): Promise<Fleet> {
  if (config.cluster === undefined) return Promise.resolve(inProcessFleet(deps.providers));
  return startNatsFleet({
    url: config.cluster,
    prefix: config.clusterPrefix,
    nodeId: config.nodeId,
    registry: deps.registry,
    local: deps.providers,
    ownerRoute: deps.scheduler.ownerRoute,
    clock: deps.clock,
    log: deps.log,
    maxBodyBytes: config.maxBodyBytes,
    timing: {
      heartbeatMs: config.clusterHeartbeatMs,
      nodeTimeoutMs: config.clusterNodeTimeoutMs,
      snapshotMs: config.clusterSnapshotMs,
      refreshMs: config.clusterRefreshMs,
      dispatchTimeoutMs: config.clusterDispatchTimeoutMs,
      silenceMs: config.clusterSilenceMs,
      firstTokenBaseMs: config.firstTokenBaseMs,
    },
  });
}
