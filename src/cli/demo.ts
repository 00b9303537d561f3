/**
 * `coordinator demo` (what `npm start` runs): a coordinator on embedded PostgreSQL, an account with credit and
 * a printed API key, and a small simulated Mac fleet connected over gRPC, so an OpenAI-SDK call works at once.
 */
import { randomBytes } from "node:crypto";
import { checkAdminKey, type Config } from "../config/config.js";
import { defaultCatalog } from "../models/catalog.js";
import { startFleet } from "../tools/fleet/fleet.js";
import type { AccountStore } from "../accounts/types.js";
import { startCoordinator, type Coordinator } from "../coordinator.js";
import { startNatsSidecar } from "./nats-sidecar.js";
import { shutDown, startRunning, untilSignal, type Running } from "./serve.js";

const DEMO_CREDIT_MICRO_USD = 100_000_000n; // $100

export interface DemoOptions {
  macs: number;
  timeScale: number;
  /** Coordinators to run (`--nodes`, default 1); more than one form a cluster on NATS. */
  nodes: number;
}

export async function runDemo(config: Config, o: DemoOptions): Promise<number> {
  checkAdminKey(config.adminKey);
  const adminKey = config.adminKey ?? `admin-${randomBytes(12).toString("hex")}`;
  if (o.nodes > 1) return runClusterDemo({ ...config, adminKey }, o);
  const running = await startRunning({ ...config, adminKey });
  let fleet: Fleet;
  try {
    fleet = await startDemoFleet(running, [running.coordinator], config, o);
  } catch (e) {
    // Do not leave the coordinator or the embedded PostgreSQL running behind a failed start.
    await running.stop();
    throw e;
  }
  await shutDown(running, await untilSignal(), () => fleet.stop());
  return 0;
}

/**
 * `demo --nodes N`: N coordinators in this process on one database and one NATS (`--cluster`, or a throwaway
 * nats-server from the PATH), HTTP and gRPC ports counted up from the configured ones, and the simulated Macs
 * spread over the nodes: a request to any node can run on any Mac.
 */
async function runClusterDemo(config: Config, o: DemoOptions): Promise<number> {
  const sidecar = config.cluster === undefined ? await startNatsSidecar() : undefined;
  const cluster = config.cluster ?? sidecar!.url;
  const nodeConfig = (i: number): Config => ({
    ...config,
    cluster,
    nodeId: `${config.nodeId ?? "node"}${i + 1}`,
    httpPort: config.httpPort === 0 ? 0 : config.httpPort + i,
    grpcPort: config.grpcPort === 0 ? 0 : config.grpcPort + i,
  });
  let running: Running | undefined;
  const others: Coordinator[] = [];
  let fleet: Fleet | undefined;
  const stopAll = async () => {
    await fleet?.stop().catch(() => undefined);
    await Promise.all(others.map((c) => c.close().catch(() => undefined)));
    await running?.stop();
    await sidecar?.stop();
  };
  try {
    running = await startRunning(nodeConfig(0));
    for (let i = 1; i < o.nodes; i++)
      others.push(await startCoordinator(nodeConfig(i), { db: running.db.db, logger: running.log }));
    fleet = await startDemoFleet(running, [running.coordinator, ...others], config, o);
  } catch (e) {
    await stopAll();
    throw e;
  }
  const signal = await untilSignal();
  // Every node drains at once (a request may be running on another node's Mac), then the fleet stops, then all.
  await Promise.all(others.map((c) => c.drain(config.shutdownGraceMs)));
  await shutDown(running, signal, async () => {
    await fleet?.stop();
    await Promise.all(others.map((c) => c.close()));
  });
  await sidecar?.stop();
  return 0;
}

type Fleet = Awaited<ReturnType<typeof startFleet>>;

/** A funded key, a provider token and the simulated Macs spread over the nodes, then the banner. */
async function startDemoFleet(
  running: Running,
  nodes: readonly Coordinator[],
  config: Config,
  o: { macs: number; timeScale: number },
): Promise<Fleet> {
  const { log } = running;
  const accounts = running.coordinator.ledger.accounts;
  const apiKey = await demoApiKey(accounts, config.devApiKey);
  const owner = await accounts.createAccount({ name: "demo-provider-owner", tier: "consumer" });
  const { token } = await accounts.issueProviderToken({ accountId: owner.id, name: "demo fleet" });
  const fleet = await startFleet({
    // Several nodes: Mac i starts on node i mod n and moves to the next node when its stream breaks.
    coordinator: nodes.map((c) => `127.0.0.1:${c.grpcPort}`),
    token,
    // Each run makes a new owner account, and a serial belongs to the account that first registered it.
    serialPrefix: `DEMO-${owner.id.replace(/^acct_/, "").slice(0, 8)}`,
    count: o.macs,
    // Every catalog model is listed by /v1/models, so the demo fleet serves them all.
    models: defaultCatalog.map((m) => m.id),
    timeScale: o.timeScale,
    warm: true,
  });
  try {
    await fleet.ready();
  } catch (e) {
    await fleet.stop().catch(() => undefined);
    throw e;
  }
  if (nodes.length > 1) await untilEveryNodeSeesTheFleet(nodes, o.macs, config.modelPools);
  log.info("demo fleet connected", { macs: o.macs, nodes: nodes.length });
  // The embedded cluster's URL is a local dev credential worth showing (`ledger verify` needs it); a DATABASE_URL
  // the operator supplied is shown without its password.
  const dbUrl = config.databaseUrl ? running.db.url.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@") : running.db.url;
  process.stdout.write(
    banner(
      nodes.map((c) => c.httpPort),
      apiKey,
      running.config.adminKey ?? "",
      o.macs,
      dbUrl,
    ),
  );
  return fleet;
}

/** How long the cluster demo waits for every node to see every Mac (with its pool) before printing the banner. */
const CLUSTER_VIEW_WAIT_MS = 15_000;

/**
 * The banner promises that a call works at once, on any node: wait until each node holds or mirrors every Mac,
 * seeded into its pool (owners seed it at the Mac's first heartbeat and publish it right after).
 */
async function untilEveryNodeSeesTheFleet(nodes: readonly Coordinator[], macs: number, pools: boolean): Promise<void> {
  const until = Date.now() + CLUSTER_VIEW_WAIT_MS;
  const ready = () =>
    nodes.every((c) => {
      const all = c.registry.view().providers;
      return all.length >= macs && (!pools || all.every((p) => p.pool !== undefined));
    });
  while (!ready()) {
    if (Date.now() > until)
      throw new Error(`the cluster's nodes did not all see the ${macs} Macs within ${CLUSTER_VIEW_WAIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Reuses the dev key across runs (the data dir persists), or issues one on a fresh funded account. */
async function demoApiKey(accounts: AccountStore, devKey: string | undefined): Promise<string> {
  if (devKey) {
    const existing = await accounts.authenticate(devKey);
    if (existing) {
      const a = await accounts.getAccount(existing.accountId);
      if (a && a.balanceMicroUsd < DEMO_CREDIT_MICRO_USD / 2n) {
        await accounts.creditAccount(a.id, DEMO_CREDIT_MICRO_USD, `demo-topup-${Date.now()}`);
      }
      return devKey;
    }
  }
  const account = await accounts.createAccount({
    name: "demo",
    tier: "service",
    initialCreditMicroUsd: DEMO_CREDIT_MICRO_USD,
  });
  const k = await accounts.issueApiKey({ accountId: account.id, name: "demo", ...(devKey ? { value: devKey } : {}) });
  return k.apiKey;
}

function banner(httpPorts: number[], apiKey: string, adminKey: string, macs: number, databaseUrl: string): string {
  const httpPort = httpPorts[0]!;
  const base = `http://127.0.0.1:${httpPort}/v1`;
  const cluster =
    httpPorts.length > 1
      ? `\n  Cluster      : ${httpPorts.length} coordinators, any of them serves every Mac: ${httpPorts.map((p) => `http://127.0.0.1:${p}/v1`).join(" ")}`
      : "";
  return `
Coordinator demo is up: ${macs} simulated Macs serving ${defaultCatalog.map((m) => m.id).join(", ")}.

  API base URL : ${base}${cluster}
  API key      : ${apiKey}
  Admin key    : ${adminKey}
  Database     : ${databaseUrl}

Try it with curl:

  curl -N ${base}/chat/completions \\
    -H "Authorization: Bearer ${apiKey}" -H "Content-Type: application/json" \\
    -d '{"model":"gpt-oss-20b","stream":true,"messages":[{"role":"user","content":"Say hello"}]}'

Or with the OpenAI SDK (node, ESM):

  import OpenAI from "openai";
  const client = new OpenAI({ baseURL: "${base}", apiKey: "${apiKey}" });
  const stream = await client.chat.completions.create({
    model: "gpt-oss-20b", stream: true, messages: [{ role: "user", content: "Say hello" }],
  });
  for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta?.content ?? "");

Capacity: curl ${base}/models/capacity

Admin:    curl -H "Authorization: Bearer ${adminKey}" -H "Content-Type: application/json" -d '{}' \\
            http://127.0.0.1:${httpPort}/coordinator.admin.v1.AdminService/ListProviders

Ctrl-C lets requests in flight finish, then stops everything (twice: stop waiting).
`;
}
