/**
 * The `coordinator` command: `serve` (production), `demo` (coordinator + embedded Postgres + a simulated
 * fleet, for a newcomer), `fleet`, `loadtest`, `simulate`, `ledger verify`, `bench`.
 */
import { ConfigError, loadConfig, settingsHelp, settingsMarkdown } from "../config/config.js";
import { runDemo } from "./demo.js";
import { runServe } from "./serve.js";

const usage = `Usage: coordinator <command> [flags]

Commands:
  serve           Run the coordinator (HTTP API + provider gRPC). Requires ADMIN_KEY.
  demo            Run a coordinator on embedded PostgreSQL with a simulated Mac fleet and a ready API key.
  fleet           Run simulated Macs against a coordinator (coordinator fleet --help).
  loadtest        Load-test any OpenAI-compatible deployment (coordinator loadtest --help).
  simulate        Routing simulator: our scheduler vs the worst-case policy (coordinator simulate --help).
  ledger verify   Check the ledger invariants against DATABASE_URL; exits 1 on any violation.
  settings        Print every setting (--markdown: the README's table).
  bench           Run the benchmark suite (npm run bench).

Settings (flag or environment variable) for serve and demo:
${settingsHelp()}

demo also accepts: --macs N (default 4), --time-scale X (default 1), --nodes N (default 1, at most 9: N
coordinators on one database forming a cluster on NATS, --cluster URL or a nats-server from the PATH).
`;

/** Runs a command; resolves with the process exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "serve":
        if (wantsHelp(rest)) return help();
        return await runServe(loadConfig(env, rest), env);
      case "demo": {
        if (wantsHelp(rest)) return help();
        const { macs, timeScale, nodes, remaining } = demoFlags(rest);
        return await runDemo(loadConfig(env, remaining), { macs, timeScale, nodes });
      }
      case "fleet": {
        const { runFleetCli } = await import("../tools/fleet/fleet.js");
        return await runFleetCli(rest, env);
      }
      case "loadtest": {
        const { runLoadtestCli } = await import("../tools/loadtest/main.js");
        return await runLoadtestCli(rest, env);
      }
      case "simulate": {
        const { main: simulate, simulateUsage } = await import("../tools/simulate/main.js");
        if (wantsHelp(rest)) {
          process.stdout.write(simulateUsage);
          return 0;
        }
        process.stdout.write(`${simulate(rest)}\n`);
        return 0;
      }
      case "ledger":
        return await ledgerCommand(rest, env);
      case "settings":
        process.stdout.write(`${rest.includes("--markdown") ? settingsMarkdown() : settingsHelp()}\n`);
        return 0;
      case "bench": {
        const { runBench } = await import("../../bench/run.js");
        return await runBench(rest, env);
      }
      case undefined:
      case "help":
      case "--help":
      case "-h":
        return help();
      default:
        process.stderr.write(`unknown command '${command}'\n\n${usage}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof ConfigError || (e as Error)?.name === "UsageError") {
      process.stderr.write(`coordinator: ${(e as Error).message}\n`);
      return 2;
    }
    // A port in use, from node:http (code EADDRINUSE) or grpc-js (which reports it only in its message).
    const message = (e as Error)?.message ?? "";
    if ((e as NodeJS.ErrnoException)?.code === "EADDRINUSE" || message.includes("EADDRINUSE")) {
      process.stderr.write(
        `coordinator: ${message}; choose another port (HTTP_PORT / GRPC_PORT, --http-port / --grpc-port)\n`,
      );
      return 1;
    }
    process.stderr.write(`coordinator: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}

function help(): number {
  process.stdout.write(usage);
  return 0;
}

function wantsHelp(args: string[]): boolean {
  return args.includes("--help") || args.includes("-h");
}

/** `demo --nodes` above this is refused: each node is a whole coordinator in one process. */
const MAX_DEMO_NODES = 9;

function demoFlags(args: string[]): { macs: number; timeScale: number; nodes: number; remaining: string[] } {
  let macs = 4;
  let timeScale = 1;
  let nodes = 1;
  const remaining: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--macs" || a === "--time-scale" || a === "--nodes") {
      const v = Number(args[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new ConfigError(`${a} needs a positive number`);
      if (a === "--macs") macs = Math.floor(v);
      else if (a === "--nodes") nodes = Math.floor(v);
      else timeScale = v;
    } else remaining.push(a);
  }
  if (nodes > MAX_DEMO_NODES) throw new ConfigError(`--nodes must be at most ${MAX_DEMO_NODES}, got ${nodes}`);
  if (nodes > macs) throw new ConfigError(`--nodes (${nodes}) must not exceed --macs (${macs}): every node gets a Mac`);
  return { macs, timeScale, nodes, remaining };
}

const ledgerUsage = `Usage: coordinator ledger verify [--database-url URL] [--data-dir DIR]

Checks the ledger invariants (conservation, idempotency, projections, reservations) against the database, read
only. Exit status: 0 all hold, 1 a violation (listed), 2 bad usage, 3 the database could not be read. While
\`npm start\` runs, pass the URL its banner prints (its embedded cluster is in use).
`;

async function ledgerCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (wantsHelp(args)) {
    process.stdout.write(ledgerUsage);
    return 0;
  }
  if (args[0] !== "verify") {
    process.stderr.write(ledgerUsage);
    return 2;
  }
  const config = loadConfig(env, args.slice(1));
  const { openDatabase } = await import("../ledger/database.js");
  const { verifyLedger } = await import("../ledger/verify-ledger.js");
  const unreadable = (e: unknown) => {
    process.stderr.write(`ledger verify: could not read the ledger: ${(e as Error)?.message || String(e)}\n`);
    return 3;
  };
  let db: Awaited<ReturnType<typeof openDatabase>>;
  try {
    db = await openDatabase({
      ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
      dataDir: config.dataDir,
      migrate: false,
    });
  } catch (e) {
    return unreadable(e);
  }
  try {
    const r = await verifyLedger(db.db, {
      overdraftMicroUsd: BigInt(config.ledgerOverdraftMicroUsd),
      holderStaleMs: config.ledgerHolderStaleMs,
    });
    if (r.quarantined.length > 0) {
      process.stdout.write(
        `ledger verify: warning: ${r.quarantined.length} quarantined write(s) await an operator (neither billed nor paid; see ledger_quarantine)\n` +
          `${r.quarantined.map((v) => `  - ${v}`).join("\n")}\n`,
      );
    }
    if (r.ok) {
      process.stdout.write("ledger verify: ok (conservation, idempotency, projections and reservations all hold)\n");
      return 0;
    }
    process.stdout.write(
      `ledger verify: ${r.violations.length} violation(s)\n${r.violations.map((v) => `  - ${v}`).join("\n")}\n`,
    );
    return 1;
  } catch (e) {
    return unreadable(e);
  } finally {
    await db.close();
  }
}
