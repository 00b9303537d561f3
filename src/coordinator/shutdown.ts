/**
 * Graceful shutdown in two halves: drain (stop being chosen, let requests in progress finish) and close (stop
 * everything, in an order that lets every open response end with its settlement durable).
 */
import type { Dispatcher } from "../dispatch/dispatcher.js";
import type { PostgresLedger } from "../ledger/postgres-ledger.js";
import type { GrpcServerHandle } from "../protocol/grpc-server.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";
import type { Fleet } from "../cluster/fleet.js";
import type { AliasSync } from "./alias-sync.js";
import type { BackgroundLoops } from "./background-loops.js";
import type { ConsumerHttp } from "./consumer-http.js";

export interface DrainResult {
  /** True if every request finished within the grace period. */
  drained: boolean;
  /** HTTP requests still open when the grace period ended (close() cuts them). */
  unfinished: number;
  waitedMs: number;
}

/** Everything that runs once the coordinator serves. */
export interface RunningParts {
  consumer: ConsumerHttp;
  grpc: GrpcServerHandle;
  dispatcher: Dispatcher;
  ledger: PostgresLedger;
  aliasSync: AliasSync;
  loops: BackgroundLoops;
  fleet: Fleet;
  /** The limiter's shared-bucket grants, handed back once no request can spend them. */
  rateLimits: { close(): Promise<void> };
  clock: Clock;
  log: Logger;
}

/** The coordinator's `drain` and `close` (see `Coordinator` in coordinator.ts for their contracts). */
export interface Shutdown {
  drain(graceMs: number): Promise<DrainResult>;
  close(): Promise<void>;
}

/** Binds drain and close to the running parts; close runs once, and later calls share its promise. */
export function shutdownOf(parts: RunningParts): Shutdown {
  let closing: Promise<void> | undefined;
  return {
    drain: (graceMs) => drain(parts, graceMs),
    close: () => (closing ??= close(parts)),
  };
}

async function drain({ consumer, grpc, loops, clock, log }: RunningParts, graceMs: number): Promise<DrainResult> {
  const http = consumer.server;
  const started = clock.nowMs();
  if (!http.draining) {
    http.startDraining();
    grpc.setServing(false);
    loops.stopWarmPool();
    log.info("draining", { open_requests: http.openRequests, grace_ms: graceMs });
  }
  const drained = await http.untilIdle(graceMs);
  const result = { drained, unfinished: http.openRequests, waitedMs: clock.nowMs() - started };
  log.info(drained ? "drained" : "drain grace period ended with requests open", { ...result });
  return result;
}

async function close({
  consumer,
  grpc,
  dispatcher,
  ledger,
  aliasSync,
  loops,
  fleet,
  rateLimits,
}: RunningParts): Promise<void> {
  const http = consumer.server;
  http.startDraining();
  loops.stopWarmPool();
  const httpClosed = http.stopListening();
  dispatcher.close();
  await grpc.close();
  // After the Macs' streams: their last events (disconnects) reach the nodes that forwarded work here first.
  await fleet.close();
  // The providers are gone, so every open response now ends by itself (an in-band error after content, a
  // retryable 503 before) once its settlement is durable. Let them, briefly, before cutting sockets.
  await http.untilIdle(5_000);
  http.closeAllConnections();
  await httpClosed;
  aliasSync.stop();
  // Every request is reconciled by now: hand unspent grants (and debts) back to the shared buckets.
  await rateLimits.close().catch(() => undefined);
  await ledger.close();
  loops.stopGauges();
  await consumer.prometheus?.close();
}
