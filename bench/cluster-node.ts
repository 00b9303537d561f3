/**
 * One coordinator of the cluster benchmark in a child process of its own, as each node of a deployment is: the
 * nodes of a cluster do not share an event loop, so forwarding between them is a real hop between processes.
 * Reads a {@link ClusterNodePlan} as JSON from argv[2], joins the cluster on the given (already migrated)
 * database, prints `ready <http port> <grpc port>` on stderr, and closes when stdin closes (the parent exits
 * or ends it), then prints one JSON line.
 */
import { pathToFileURL } from "node:url";
import type { Config } from "../src/config/config.js";
import { benchConfig } from "./bench-coordinator.js";
import { startCoordinator } from "../src/coordinator.js";
import { openDatabase } from "../src/ledger/database.js";
import { silentLogger } from "../src/util/logger.js";

/** What the child starts. */
export interface ClusterNodePlan {
  databaseUrl: string;
  /** Overrides of the default config (cluster URL, prefix, node id, ...); ports and host are loopback/free. */
  config: Partial<Config>;
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.argv[2] ?? "{}") as ClusterNodePlan;
  const db = await openDatabase({ databaseUrl: plan.databaseUrl, poolSize: 10, migrate: false });
  const coordinator = await startCoordinator(benchConfig(plan.config), { db: db.db, logger: silentLogger });
  process.stderr.write(`ready ${coordinator.httpPort} ${coordinator.grpcPort}\n`);
  await new Promise<void>((resolve) => {
    process.stdin.on("end", resolve).on("close", resolve).resume();
  });
  await coordinator.close();
  await db.close();
  process.stdout.write(`${JSON.stringify({ closed: true })}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
