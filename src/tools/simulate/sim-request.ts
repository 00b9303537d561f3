/**
 * The workload's requests: a simulated request's life from arrival to completion ({@link SimRequest}), the
 * closed-loop workers that issue them ({@link Worker}), and the sampling of a new request's traits.
 */
import { shapeOf } from "../../inference/types.js";
import type { RouteRequest } from "../../scheduler/types.js";
import { sampleLogNormal, type LogNormal } from "./prng.js";
import type { Scenario } from "./scenario.js";
import type { SimJob } from "./sim-provider.js";

/** One request, from its arrival through queueing and dispatch to its completion. */
export interface SimRequest {
  route: RouteRequest;
  arrivalMs: number;
  outputTokens: number;
  worker: Worker | undefined;
  dispatchedAtMs: number;
  job: SimJob | undefined;
  providerId: string | undefined;
  wasQueued: boolean;
}

/** A closed-loop client: issues its next request a think time after the previous one settles. */
export interface Worker {
  group: number;
  nextAtMs: number;
  busy: boolean;
}

/** A scenario's closed-loop workers, each group's staggered 50 ms apart from its start. */
export function spawnWorkers(scenario: Scenario): Worker[] {
  const workers: Worker[] = [];
  scenario.workers.forEach((g, gi) => {
    for (let i = 0; i < g.concurrency; i++) workers.push({ group: gi, nextAtMs: g.startMs + i * 50, busy: false });
  });
  return workers;
}

/** A new request arriving at `nowMs`, its prompt and output lengths sampled from `random`. */
export function newSimRequest(
  random: () => number,
  requestId: string,
  nowMs: number,
  model: string,
  prompt: LogNormal,
  maxTokens: number,
  output: LogNormal,
  vision: boolean,
  worker: Worker | undefined,
): SimRequest {
  const traits = {
    maxTokens,
    estimatedPromptTokens: sampleLogNormal(random, prompt) + (vision ? 1100 : 0),
    hasTools: false,
    requiresVision: vision,
    stream: true,
  };
  const out = Math.min(maxTokens, sampleLogNormal(random, output));
  return {
    route: { requestId, model, traits, shape: shapeOf(traits), exclude: new Set() },
    arrivalMs: nowMs,
    outputTokens: Math.max(1, out),
    worker,
    dispatchedAtMs: 0,
    job: undefined,
    providerId: undefined,
    wasQueued: false,
  };
}
