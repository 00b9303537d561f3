/**
 * What the cluster tests (test/cluster) share: the NATS they run against, cluster timings short enough for a test,
 * and a second coordinator joining node A's cluster on A's database.
 */
import { randomBytes } from "node:crypto";
import type { Config } from "../../src/config/config.js";
import { startCoordinator, type Coordinator } from "../../src/coordinator.js";
import type { Logger } from "../../src/util/logger.js";
import { testConfig, type TestCoordinator } from "./coordinator.js";

/** The NATS server of the cluster tests: CLUSTER_TEST_NATS_URL, default the machine's. */
export const CLUSTER_TEST_NATS = process.env.CLUSTER_TEST_NATS_URL ?? "nats://127.0.0.1:4222";

/** A cluster of its own (a fresh subject prefix, so runs never meet) with timings a test can wait out. */
export function testClusterConfig(): Partial<Config> {
  return {
    cluster: CLUSTER_TEST_NATS,
    clusterPrefix: `t${randomBytes(4).toString("hex")}`,
    clusterHeartbeatMs: 200,
    clusterNodeTimeoutMs: 1_000,
    clusterSilenceMs: 1_000,
    clusterDispatchTimeoutMs: 500,
  };
}

/** Starts node `nodeId` of `a`'s cluster, on `a`'s database, with no Mac of its own. */
export function joinCluster(
  a: TestCoordinator,
  cluster: Partial<Config>,
  nodeId: string,
  o: { config?: Partial<Config>; logger: Logger },
): Promise<Coordinator> {
  const config = testConfig(a.adminKey, { ...o.config, ...cluster, nodeId });
  return startCoordinator(config, { db: a.db.db, logger: o.logger });
}
