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
