/**
 * Fleet gauges per model from the capacity snapshot (the same numbers as `GET /v1/models/capacity`): routable,
 * warm and cold providers, active requests, aggregate decode rate and the KV token budget. Called on the gauge
 * reporting interval, so a quiet fleet still reports.
 */
import { gauge } from "./metrics.js";

/** The capacity row fields the gauges read (structurally `ModelCapacity`). */
export interface FleetRow {
  id: string;
  routable_providers: number;
  warm_providers: number;
  cold_providers: number;
  active_requests: number;
  aggregate_tps: number;
  token_budget_remaining: number;
  token_budget_total: number;
}

/** The per-pool fields the pool gauges read (structurally `PoolRow`, scheduler/model-pools.ts). */
export interface PoolGaugeRow {
  pool: string;
  assigned: number;
  warm: number;
  serving: number;
  activeRequests: number;
  tokenBudgetRemaining: number;
  tokenBudgetTotal: number;
  decodeTps: number;
}

/**
 * Sets the per-pool gauges. A pool that emptied since the last report is reported once more at zero, so a
 * dashboard does not keep showing its last members.
 */
export function reportPoolGauges(
  rows: readonly PoolGaugeRow[],
  previous: ReadonlySet<string> = new Set(),
): Set<string> {
  const seen = new Set<string>();
  const set = (r: PoolGaugeRow) => {
    const tags = { pool: r.pool };
    gauge("pools.assigned", r.assigned, tags);
    gauge("pools.warm", r.warm, tags);
    gauge("pools.serving", r.serving, tags);
    gauge("pools.active_requests", r.activeRequests, tags);
    gauge("pools.token_budget_remaining", r.tokenBudgetRemaining, tags);
    gauge("pools.token_budget_total", r.tokenBudgetTotal, tags);
    gauge("pools.decode_tps", r.decodeTps, tags);
  };
  for (const r of rows) {
    seen.add(r.pool);
    set(r);
  }
  for (const pool of previous)
    if (!seen.has(pool))
      set({
        pool,
        assigned: 0,
        warm: 0,
        serving: 0,
        activeRequests: 0,
        tokenBudgetRemaining: 0,
        tokenBudgetTotal: 0,
        decodeTps: 0,
      });
  return seen;
}

/** Sets every fleet gauge for every model row. */
export function reportFleetGauges(rows: readonly FleetRow[]): void {
  for (const r of rows) {
    const tags = { model: r.id };
    gauge("fleet.routable_providers", r.routable_providers, tags);
    gauge("fleet.warm_providers", r.warm_providers, tags);
    gauge("fleet.cold_providers", r.cold_providers, tags);
    gauge("fleet.active_requests", r.active_requests, tags);
    gauge("fleet.aggregate_tps", r.aggregate_tps, tags);
    gauge("fleet.token_budget_remaining", r.token_budget_remaining, tags);
    gauge("fleet.token_budget_total", r.token_budget_total, tags);
  }
}
