/**
 * Instant simulated Macs for the gateway and cluster benchmarks, run as a child process: in production providers
 * are remote machines, so their gRPC client, protobuf encoding and token generation are not the coordinator's
 * overhead and must not run on its event loop. Reads an {@link InstantMacsPlan} as JSON from argv[2], prints
 * `ready` on stderr once every Mac has registered, stops the Macs when stdin closes (the parent exits or ends
 * it) and prints one JSON line with the number of requests the Macs served.
 */
import { pathToFileURL } from "node:url";
import { chipProfiles } from "../src/tools/fleet/chip-profiles.js";
import { SimulatedMac } from "../src/tools/fleet/simulated-mac.js";

/** What the child starts. */
export interface InstantMacsPlan {
  coordinator: string;
  token: string;
  count: number;
  model: string;
  /** Concurrent requests per Mac and model. */
  maxConcurrency: number;
  /** Serial prefix (default BENCH-GW): a serial belongs to the provider account that first registered it. */
  serialPrefix?: string;
  /** Mac i connects to `coordinators[i % n]` instead of `coordinator` (a fleet spread over a cluster). */
  coordinators?: string[];
  /**
   * Decode at the chip's simulated pace (real time) instead of instantly: for latency cells, where instant Macs
   * would turn every request into CPU work and the figures into queueing on a saturated machine.
   */
  paced?: boolean;
  /** Paced Macs: the shortest gap between two chunks of one stream, real ms (tokens decoded meanwhile ride along). */
  coalesceMs?: number;
  /** Further fleets started by the same child (other coordinators, tokens or models), so one process serves all. */
  more?: Omit<InstantMacsPlan, "more">[];
}

function macsOf(plan: Omit<InstantMacsPlan, "more">): SimulatedMac[] {
  const chip = chipProfiles.find((c) => c.memoryGb >= 128)!;
  const to = plan.coordinators ?? [plan.coordinator];
  return Array.from(
    { length: plan.count },
    (_, i) =>
      new SimulatedMac({
        coordinator: to[i % to.length]!,
        token: plan.token,
        serial: `${plan.serialPrefix ?? "BENCH-GW"}-${i}`,
        chip,
        models: [plan.model],
        warmModels: [plan.model],
        instant: plan.paced !== true,
        ...(plan.coalesceMs !== undefined ? { coalesceMs: plan.coalesceMs } : {}),
        maxConcurrency: plan.maxConcurrency,
        heartbeatIntervalMs: 1_000,
      }),
  );
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.argv[2] ?? "{}") as InstantMacsPlan;
  const macs = [plan, ...(plan.more ?? [])].flatMap(macsOf);
  await Promise.all(
    macs.map((m) => {
      m.start();
      return m.ready();
    }),
  );
  process.stderr.write("ready\n");
  // Closing stdin is the stop signal: it also fires when the parent dies, so no Mac outlives the benchmark.
  await new Promise<void>((resolve) => {
    process.stdin.on("end", resolve).on("close", resolve).resume();
  });
  await Promise.all(macs.map((m) => m.stop()));
  process.stdout.write(`${JSON.stringify({ macs: macs.length })}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
