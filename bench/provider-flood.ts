/**
 * What a flooding provider costs the coordinator (issue 12: "a flood costs the coordinator under 5 % of a
 * core"). One coordinator in this process; a provider in a child process, first heartbeating honestly (the
 * baseline), then flooding heartbeats as fast as its stream accepts them and reconnecting the moment it is cut
 * off. The coordinator's CPU time (this process) is measured over each window; the flood's cost is the
 * difference, as a share of one core.
 */
import { markdownTable, ratio, target, type BenchResult } from "./bench-result.js";
import { startBenchCoordinator } from "./bench-coordinator.js";
import { spawnBenchChild } from "./spawn-child.js";

interface ChildStats {
  sessions: number;
  registered: number;
  heartbeats: number;
  endings: Record<string, number>;
}

interface Window {
  mode: "honest" | "flood";
  cpuShare: number;
  stats: ChildStats;
}

export async function runProviderFloodBench(o: {
  quick: boolean;
  env: NodeJS.ProcessEnv;
  progress?: (line: string) => void;
}): Promise<BenchResult> {
  const durationMs = o.quick ? 3_000 : 15_000;
  const heartbeatIntervalMs = 5_000;
  const bench = await startBenchCoordinator({ env: o.env, accounts: 0, config: { heartbeatIntervalMs } });
  try {
    const measure = async (mode: "honest" | "flood", serial: string): Promise<Window> => {
      o.progress?.(`${mode}: ${durationMs / 1000} s`);
      const child = spawnBenchChild<ChildStats>("./flood-provider.ts", [
        "--address",
        bench.grpcAddress,
        "--token",
        bench.providerToken,
        "--serial",
        serial,
        "--mode",
        mode,
        "--duration-ms",
        String(durationMs),
        "--interval-ms",
        String(heartbeatIntervalMs),
      ]);
      // The child's start-up (tsx, imports) is not the coordinator's work: measure from its first registration.
      const started = Date.now();
      while (bench.coordinator.registry.bySerial(serial) === undefined && Date.now() - started < 30_000)
        await new Promise((r) => setTimeout(r, 20));
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const stats = await child.result;
      const elapsedMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      return { mode, cpuShare: (cpu.user + cpu.system) / 1000 / elapsedMs, stats };
    };
    const honest = await measure("honest", "FLOOD-BASELINE-1");
    const flood = await measure("flood", "FLOOD-ATTACKER-1");
    const cost = Math.max(0, flood.cpuShare - honest.cpuShare);
    const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
    const markdown = [
      markdownTable(
        [
          "provider",
          "coordinator CPU (share of a core)",
          "sessions opened",
          "registered",
          "heartbeats sent",
          "stream endings",
        ],
        [honest, flood].map((w) => [
          w.mode,
          pct(w.cpuShare),
          w.stats.sessions,
          w.stats.registered,
          w.stats.heartbeats,
          JSON.stringify(w.stats.endings),
        ]),
      ),
      "",
      `Flood cost (flood − honest): ${pct(cost)} of a core; flood/honest CPU ${ratio(flood.cpuShare, honest.cpuShare)}. ` +
        `The flooder is cut off after 100 over-budget frames and its serial refused for 30 s; it reconnects at once every time.`,
    ].join("\n");
    return {
      name: "flood",
      title: "Provider heartbeat flood",
      markdown,
      targets: [target("coordinator CPU spent on a flooding provider", cost * 100, "<", 5, "% of a core")],
      data: { durationMs, honest, flood, costShare: cost },
    };
  } finally {
    await bench.close();
  }
}
