/**
 * Instant simulated Macs for the gateway benchmark, run as a child process: in production providers are remote
 * machines, so their gRPC client, protobuf encoding and token generation are not the coordinator's overhead and
 * must not run on its event loop. Reads `{ coordinator, token, count, model }` as JSON from argv[2], prints
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
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.argv[2] ?? "{}") as InstantMacsPlan;
  const chip = chipProfiles.find((c) => c.memoryGb >= 128)!;
  const macs = Array.from(
    { length: plan.count },
    (_, i) =>
      new SimulatedMac({
        coordinator: plan.coordinator,
        token: plan.token,
        serial: `BENCH-GW-${i}`,
        chip,
        models: [plan.model],
        warmModels: [plan.model],
        instant: true,
        maxConcurrency: plan.maxConcurrency,
        heartbeatIntervalMs: 1_000,
      }),
  );
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
