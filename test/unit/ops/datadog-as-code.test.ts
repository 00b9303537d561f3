/**
 * The Datadog dashboard and monitors in ops/datadog/ are code: every metric they query must be one the
 * coordinator emits (declared in the metric catalogue), queried the way its type allows, and filtered or grouped
 * only by tag keys it carries, so neither can silently go blank after a rename.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { requestOutcomes } from "../../../src/http/request-metrics.js";
import { metricSpec, type MetricSpec } from "../../../src/telemetry/metric-catalogue.js";

const load = (file: string): unknown =>
  JSON.parse(readFileSync(new URL(`../../../ops/datadog/${file}`, import.meta.url), "utf8"));

/** Every string under a `query` (or legacy `q`) key, anywhere in the document. */
function queriesIn(doc: unknown, out: string[] = []): string[] {
  if (Array.isArray(doc)) for (const x of doc) queriesIn(x, out);
  else if (doc && typeof doc === "object") {
    for (const [k, v] of Object.entries(doc)) {
      if ((k === "query" || k === "q") && typeof v === "string") out.push(v);
      else queriesIn(v, out);
    }
  }
  return out;
}

interface MetricRef {
  aggregator: string;
  name: string;
  filter: Record<string, string>;
  by: string[];
  modifier: string | undefined;
}

const refPattern =
  /\b(avg|sum|min|max|count|p50|p75|p90|p95|p99):coordinator\.([a-z0-9_.]+)\{([^}]*)\}(?:\s*by\s*\{([^}]*)\})?(\.as_count\(\)|\.as_rate\(\))?/g;

function refsIn(query: string): MetricRef[] {
  return [...query.matchAll(refPattern)].map((m) => ({
    aggregator: m[1]!,
    name: m[2]!,
    filter: Object.fromEntries(
      m[3]!
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "*" && s !== "" && !s.startsWith("$"))
        .map((s) => [s.slice(0, s.indexOf(":")), s.slice(s.indexOf(":") + 1)]),
    ),
    by: (m[4] ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    modifier: m[5],
  }));
}

/** Tags every DogStatsD line carries (hot-shots globalTags in src/telemetry/sdk.ts). */
const globalTags = ["env", "service"];

function checkRef(where: string, r: MetricRef): MetricSpec {
  const spec = metricSpec(r.name);
  assert.ok(spec, `${where}: coordinator.${r.name} is not in src/telemetry/metric-catalogue.ts`);
  const percentile = r.aggregator.startsWith("p");
  assert.ok(
    !percentile || spec.type === "distribution",
    `${where}: ${r.aggregator} on ${r.name}, a ${spec.type} (percentiles need a distribution)`,
  );
  assert.ok(
    r.modifier === undefined || spec.type === "counter",
    `${where}: ${r.modifier} on ${r.name}, a ${spec.type}`,
  );
  for (const k of [...Object.keys(r.filter), ...r.by]) {
    assert.ok(
      spec.tags.includes(k) || globalTags.includes(k),
      `${where}: ${r.name} carries no tag ${k} (it has ${spec.tags.join(", ") || "none"})`,
    );
  }
  if (r.name === "requests" && r.filter.outcome)
    assert.ok(
      (requestOutcomes as readonly string[]).includes(r.filter.outcome),
      `${where}: outcome ${r.filter.outcome}`,
    );
  return spec;
}

describe("Datadog dashboard and monitors as code", () => {
  it("dashboard.json is an importable dashboard whose every query names a catalogued metric, aggregated as its type allows", () => {
    const dash = load("dashboard.json") as { title: string; layout_type: string; widgets: unknown[] };
    assert.ok(dash.title && dash.layout_type && Array.isArray(dash.widgets) && dash.widgets.length > 0);
    const queries = queriesIn(dash);
    assert.ok(queries.length >= 30, `${queries.length} queries`);
    const used = new Set<string>();
    for (const q of queries) {
      const refs = refsIn(q);
      assert.ok(refs.length > 0, `query names no coordinator metric: ${q}`);
      for (const r of refs) {
        checkRef(`dashboard ${q}`, r);
        used.add(r.name);
      }
    }
    // The panels operators asked for.
    for (const m of [
      "requests",
      "inference.ttft_ms",
      "inference.duration_ms",
      "fleet.warm_providers",
      "fleet.cold_providers",
      "fleet.routable_providers",
      "fleet.token_budget_remaining",
      "request_queue.depth",
      "request_queue.wait_ms",
      "routing.cooldown_entered",
      "routing.provider_breaker",
      "inference.dispatches",
      "billing.spend_micro_usd",
      "billing.provider_earnings_micro_usd",
      "tokens.input",
      "tokens.output",
      "ledger.write_ms",
      "ledger.quarantined",
      "ratelimit.rejections",
    ]) {
      assert.ok(used.has(m), `the dashboard shows ${m}`);
    }
  });

  it("monitors.json alerts on in-band errors, cooldown storms, ledger write failures and queue saturation, with catalogued metrics only", () => {
    const monitors = load("monitors.json") as {
      name: string;
      type: string;
      query: string;
      message: string;
      options: { thresholds: { critical: number } };
    }[];
    assert.ok(Array.isArray(monitors) && monitors.length >= 4);
    const used = new Set<string>();
    for (const m of monitors) {
      assert.equal(m.type, "query alert", m.name);
      assert.ok(m.message.length > 20, `${m.name} tells the operator what to do`);
      assert.equal(typeof m.options.thresholds.critical, "number", m.name);
      assert.match(m.query, /^(avg|sum|min|max)\(last_\d+[mh]\):.+ [<>]=? [\d.]+$/, m.name);
      assert.ok(
        m.query.includes(` ${m.options.thresholds.critical}`) ||
          m.query.endsWith(String(m.options.thresholds.critical)),
        `${m.name}: the query's threshold is the critical one`,
      );
      const refs = refsIn(m.query);
      assert.ok(refs.length > 0, `${m.name} queries a coordinator metric`);
      for (const r of refs) {
        const spec = checkRef(`monitor ${m.name}`, r);
        // A counter without .as_count() would alert on a per-second rate, not the count the threshold means.
        if (spec.type === "counter") assert.equal(r.modifier, ".as_count()", `${m.name}: ${r.name} needs .as_count()`);
        used.add(`${r.name}${JSON.stringify(r.filter)}`);
      }
    }
    const has = (prefix: string) => [...used].some((u) => u.startsWith(prefix));
    assert.ok(has('requests{"outcome":"in_band_error"}'), "in-band error rate");
    assert.ok(has("routing.cooldown_entered"), "cooldown storm");
    assert.ok(has("ledger.write_failures") && has("ledger.quarantined"), "ledger write failures");
    assert.ok(has("inference.shed") && has("request_queue.depth"), "queue saturation");
  });
});
