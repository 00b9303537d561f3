/**
 * Every metric the coordinator emits, declared once: its type, unit, description and the tag keys it may
 * carry. `metrics.ts` refuses anything not declared here, the Datadog dashboard and monitors in `ops/datadog/`
 * are tested against it, and the README's Observability section is written from it.
 *
 * Names are relative: DogStatsD sends them with the `coordinator.` prefix (`coordinator.requests`), OpenTelemetry
 * as `coordinator.<name>`, Prometheus as `coordinator_<name with dots as underscores>` plus its unit suffix.
 *
 * ## Cardinality rules
 * Every tag key has a closed or bounded set of values:
 * - closed enums: `outcome`, `status`, `reason`, `state`, `dialect`, `route` (templated: `/v1/models/{id}`, never
 *   the raw path), `code` (the ErrorCode set), `tier`, `dimension`, `shape`, `op`, `frame`, `kind`, `source`,
 *   `field`, `direction`, `committed`;
 * - `model`: catalogue models and models a connected provider advertises (validated ids, bounded by the fleet);
 * - `provider_id`: the opaque id of a provider machine, bounded by the machines ever connected to this process.
 *   Only the keys listed with `provider_id` below carry it (faults, cooldowns, breakers, earnings).
 * Never tag with request ids, API keys, key ids, account ids, serials or free text: those go to logs and traces.
 */

/** DogStatsD `|c`, OTel Counter. */
export type MetricType = "counter" | "gauge" | "distribution";

export interface MetricSpec {
  readonly type: MetricType;
  /** UCUM-style unit (`ms`, `{request}`, `{token}`, `{microusd}`); OTel and Prometheus carry it. */
  readonly unit: string;
  readonly description: string;
  /** The only tag keys this metric may carry. */
  readonly tags: readonly string[];
  /** Histogram bucket upper bounds for OTel/Prometheus (distributions only; DogStatsD keeps raw points). */
  readonly buckets?: readonly number[];
}

/** Latency buckets from 5 ms to 10 minutes: first tokens on a cold Mac and long streams both land in a bucket. */
export const latencyBucketsMs: readonly number[] = [
  5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 20_000, 30_000, 60_000, 120_000, 300_000, 600_000,
];
const sizeBuckets: readonly number[] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 5_000, 20_000, 100_000];

const c = (unit: string, description: string, tags: readonly string[] = []): MetricSpec => ({
  type: "counter",
  unit,
  description,
  tags,
});
const g = (unit: string, description: string, tags: readonly string[] = []): MetricSpec => ({
  type: "gauge",
  unit,
  description,
  tags,
});
const d = (
  unit: string,
  description: string,
  tags: readonly string[] = [],
  buckets = unit === "ms" ? latencyBucketsMs : sizeBuckets,
): MetricSpec => ({
  type: "distribution",
  unit,
  description,
  tags,
  buckets,
});

/** The catalogue. Keys are metric names. */
export const metricCatalogue = {
  // ---- consumer traffic ------------------------------------------------------------------------------------
  requests: c(
    "{request}",
    "Consumer HTTP requests by templated route, dialect, model, status and outcome (success | in_band_error | client_error | shed | error | cancelled). Load shedding (429: queue full, rate limited) is outcome:shed.",
    ["route", "dialect", "model", "status", "outcome"],
  ),
  "http.latency_ms": d(
    "ms",
    "Consumer HTTP request duration, headers in to response finished, by templated route and status.",
    ["route", "status"],
  ),
  "http.inference_errors": c("{request}", "Inference requests answered with an error, by dialect and error code.", [
    "dialect",
    "code",
  ]),
  "http.auth_throttled": c("{request}", "Requests refused by the failed-authentication throttle."),
  "http.connections_refused": c(
    "{connection}",
    "Connections to the consumer port closed at once: HTTP_MAX_CONNECTIONS open (limit).",
    ["reason"],
  ),
  "auth.key_lookups": c("{lookup}", "API key cache lookups that reached the database, by outcome.", ["outcome"]),

  // ---- dispatch --------------------------------------------------------------------------------------------
  "inference.ttft_ms": d("ms", "Time to first token, request accepted to first content sent.", ["model"]),
  "inference.duration_ms": d(
    "ms",
    "End-to-end dispatch duration of requests that reached the dispatcher (shed requests are not observed).",
    ["model", "outcome"],
  ),
  "inference.dispatches": c(
    "{attempt}",
    "Dispatch attempt outcomes (success | retry_precontent | timeout | failure | overrun). A failed-over attempt names its provider and reason.",
    ["status", "model", "provider_id", "reason"],
  ),
  "inference.in_band_error": c(
    "{request}",
    "Provider failures after content was committed to the consumer (an error event mid-stream).",
    ["model", "provider_id"],
  ),
  "inference.speculative_dispatch": c("{attempt}", "Speculative backup attempts dispatched for a slow first token.", [
    "model",
  ]),
  "inference.speculative_win": c("{attempt}", "Speculative backup attempts that won the race.", ["model"]),
  "inference.shed": c(
    "{request}",
    "Requests the dispatcher shed before any attempt (queue full or queue wait exceeded).",
    ["model", "reason"],
  ),
  "routing.client_gone": c("{request}", "Consumers that hung up before the answer finished.", ["committed"]),
  "routing.preflight_reject": c("{request}", "Requests refused before admission because no provider can serve them.", [
    "model",
    "code",
  ]),
  "routing.warm_pool_load": c("{load}", "Model loads requested by the warm-pool planner.", ["model"]),
  "routing.pool_exhausted": c(
    "{request}",
    "Requests answered 429 pool_exhausted: their model pool had no room while other pools' Macs did.",
    ["model"],
  ),
  "pools.assignments": c(
    "{assignment}",
    "Providers assigned a model pool: seeded from their first heartbeat, or reseeded after an alias change released them.",
    ["reason"],
  ),
  "pools.reassignments": c("{reassignment}", "Idle, unloaded providers moved to a starved model pool on demand.", [
    "pool",
  ]),
  "routing.cooldown_entered": c("{cooldown}", "A (provider, model, shape) entered cooldown after repeated faults.", [
    "shape",
    "provider_id",
    "model",
    "reason",
  ]),
  "routing.cooldown_cleared": c("{cooldown}", "A cooldown ended (expired | success | forgotten).", [
    "shape",
    "reason",
    "provider_id",
  ]),
  "routing.provider_breaker": c("{transition}", "Provider circuit-breaker transitions (open | closed).", [
    "state",
    "provider_id",
  ]),

  // ---- queue -----------------------------------------------------------------------------------------------
  "request_queue.depth": g("{request}", "Requests waiting for capacity, per model.", ["model"]),
  "request_queue.wait_ms": d(
    "ms",
    "Time a request waited in the capacity queue (until it started, timed out or was cancelled).",
    ["model"],
  ),
  "request_queue.rejected": c("{request}", "Requests refused because the model's queue was full.", ["model", "reason"]),
  "request_queue.timeout": c("{request}", "Requests that waited the whole queue wait without capacity.", ["model"]),

  // ---- rate limits -----------------------------------------------------------------------------------------
  "ratelimit.rejections": c("{request}", "Rate-limit rejections (429) by tier and dimension.", ["tier", "dimension"]),
  "ratelimit.lease.exchanges": c(
    "{exchange}",
    "Exchanges with the shared rate-limit buckets (RATE_LIMIT_STORE=postgres), by outcome: granted, empty, release, failed.",
    ["outcome"],
  ),
  "ratelimit.output_admission.delta_tokens": d(
    "{token}",
    "Difference between admitted and actual output tokens at reconciliation.",
    ["tier", "direction"],
  ),

  // ---- tokens and money ------------------------------------------------------------------------------------
  "tokens.input": c("{token}", "Prompt tokens settled (billed), per model.", ["model"]),
  "tokens.output": c("{token}", "Completion tokens settled (billed), per model.", ["model"]),
  "billing.spend_micro_usd": c("{microusd}", "Consumer spend settled, µUSD, per model.", ["model"]),
  "billing.provider_earnings_micro_usd": c("{microusd}", "Provider earnings settled, µUSD, per provider and model.", [
    "model",
    "provider_id",
  ]),
  "billing.platform_fee_micro_usd": c("{microusd}", "Platform fees settled, µUSD, per model.", ["model"]),

  // ---- fleet (gauges from the capacity snapshot, on the reporting interval) -------------------------------
  "providers.connected": g("{provider}", "Provider sessions connected to this process."),
  "fleet.routable_providers": g(
    "{provider}",
    "Connected providers that could serve the model (not draining, not overheating).",
    ["model"],
  ),
  "fleet.warm_providers": g("{provider}", "Routable providers with the model loaded.", ["model"]),
  "fleet.cold_providers": g("{provider}", "Routable providers that would need a load.", ["model"]),
  "fleet.active_requests": g("{request}", "Requests running on warm providers, per model.", ["model"]),
  "fleet.aggregate_tps": g("{token}/s", "Current aggregate decode rate over warm providers.", ["model"]),
  "fleet.token_budget_remaining": g("{token}", "KV token budget still free on warm providers.", ["model"]),
  "fleet.token_budget_total": g("{token}", "KV token budget on warm providers.", ["model"]),
  "pools.assigned": g("{provider}", "Providers assigned to the model pool.", ["pool"]),
  "pools.warm": g("{provider}", "Pool members holding one of its builds loaded.", ["pool"]),
  "pools.serving": g("{provider}", "Pool members with a request in flight.", ["pool"]),
  "pools.active_requests": g("{request}", "Requests in flight on the pool's members.", ["pool"]),
  "pools.token_budget_remaining": g("{token}", "KV token budget still free on the pool's loaded builds.", ["pool"]),
  "pools.token_budget_total": g("{token}", "KV token budget of the pool's loaded builds.", ["pool"]),
  "pools.decode_tps": g("{token}/s", "Decode rate the pool's running slots report.", ["pool"]),
  "warm_pool.target": g("{provider}", "Warm providers the planner wants for the model.", ["model"]),
  "warm_pool.warm": g("{provider}", "Warm providers the planner counts for the model.", ["model"]),

  // ---- provider edge ---------------------------------------------------------------------------------------
  "provider.registrations": c("{registration}", "Provider registrations by outcome.", ["outcome"]),
  "provider.challenges": c("{challenge}", "Provider key challenges by outcome.", ["outcome"]),
  "provider.disconnects": c("{session}", "Provider sessions that ended."),
  "provider.connections_refused": c(
    "{connection}",
    "Connections to the provider port closed at once: PROVIDER_MAX_CONNECTIONS open (limit) or PROVIDER_MAX_CONNECTIONS_PER_ADDRESS from the address (address).",
    ["reason"],
  ),
  "provider.fenced": c(
    "{provider}",
    "Providers fenced (refused until an operator or owner acts); the reason is in the `provider fenced` log line.",
    ["provider_id"],
  ),
  "provider.output_overruns": c(
    "{request}",
    "Answers stopped because the provider streamed past 8 × max_tokens + 1,024 tokens (outputTokenCeiling); each is one warn line.",
    ["model"],
  ),
  "provider.protocol_violations": c("{frame}", "Frames refused as protocol violations, by frame kind.", ["frame"]),
  "provider.frames_dropped": c("{frame}", "Frames dropped by the per-session frame budget.", ["kind"]),
  "provider.flood_disconnects": c("{session}", "Sessions ended for flooding."),
  "provider.claims_clamped": c("{claim}", "Provider claims clamped to physics, by source and field.", [
    "source",
    "field",
  ]),
  "provider.usage_overclaims": c(
    "{request}",
    "Settlements where the provider's usage claim exceeded the coordinator's count.",
    ["model"],
  ),

  // ---- cluster (CLUSTER set) ---------------------------------------------------------------------------------
  "cluster.forwards": c(
    "{dispatch}",
    "Dispatches forwarded to the coordinator that owns the Mac, by outcome: `accepted`, `refused` (the owner's fresher view said no; the next candidate is tried), `unanswered` (timeout or no responders), `too_large` (the dispatch exceeds NATS max_payload; tried on another Mac).",
    ["outcome"],
  ),
  "cluster.owner_decisions": c(
    "{dispatch}",
    "Forwarded dispatches this coordinator decided as a Mac's owner, by outcome (`accepted`, `refused`).",
    ["outcome"],
  ),
  "cluster.nodes_expired": c("{node}", "Coordinators presumed dead (silent for CLUSTER_NODE_TIMEOUT_MS)."),
  "cluster.providers_moved": c(
    "{provider}",
    "Streams closed here because the Mac registered on another coordinator since (a Mac keeps one live stream).",
  ),
  "cluster.publish_failures": c(
    "{message}",
    "Messages NATS refused to publish (over max_payload, or a bad subject); each is one warn line. Relayed events are batched under MAX_RELAY_MESSAGE_BYTES, so any count here needs a look.",
  ),
  "cluster.snapshots_refused": c(
    "{entry}",
    "Fleet-view entries this node could not mirror (a peer on another version, or a forged key): skipped, the first per key logged.",
  ),

  // ---- ledger ----------------------------------------------------------------------------------------------
  "ledger.write_ms": d("ms", "Ledger batch commit latency."),
  "ledger.batch_size": d("{op}", "Operations per ledger batch."),
  "ledger.queued": g("{op}", "Ledger operations waiting to be written."),
  "ledger.write_failures": c("{batch}", "Ledger batch commits that failed (retried)."),
  "ledger.quarantined": c(
    "{op}",
    "Ledger writes quarantined after repeated failure: neither billed nor paid until an operator acts.",
    ["op"],
  ),
} as const satisfies Record<string, MetricSpec>;

/** A declared metric name. */
export type MetricName = keyof typeof metricCatalogue;

/** The spec of `name`, or undefined if it is not declared. */
export function metricSpec(name: string): MetricSpec | undefined {
  return Object.hasOwn(metricCatalogue, name) ? (metricCatalogue as Record<string, MetricSpec>)[name] : undefined;
}
