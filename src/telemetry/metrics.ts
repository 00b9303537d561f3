/**
 * The one place code records metrics. Every name must be declared in ./metric-catalogue.ts (type, unit, tag
 * keys); each observation goes to OpenTelemetry (via @opentelemetry/api: the global provider installed by the
 * entry point, plus any provider added with {@link addMeterProvider}, e.g. the Prometheus reader) and to
 * DogStatsD (hot-shots, when a client is configured). Distributions are DogStatsD `distribution`s (`|d`, so
 * Datadog computes fleet-wide percentiles); gauges are re-sent on a fixed interval ({@link reportGaugesEvery}).
 *
 * A name or tag key outside the catalogue is refused: by default (tests) it throws; the entry point switches to
 * "drop" ({@link setUndeclaredMetricPolicy}), which drops the observation (or the tag) and logs once per name.
 */
import {
  metrics as otel,
  type Attributes,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
} from "@opentelemetry/api";
import { metricSpec, type MetricSpec } from "./metric-catalogue.js";

export type Tags = Record<string, string | number | boolean>;

/** The subset of a hot-shots client the facade uses (so tests can pass a fake). */
export interface StatsdLike {
  increment(stat: string, value: number, tags?: Record<string, string>): void;
  distribution(stat: string, value: number, tags?: Record<string, string>): void;
  gauge(stat: string, value: number, tags?: Record<string, string>): void;
}

/** What happens to a metric name or tag key the catalogue does not declare. */
export type UndeclaredMetricPolicy =
  | { kind: "throw" }
  | { kind: "drop"; log: (msg: string, fields: Record<string, unknown>) => void };

let statsd: StatsdLike | undefined;
let policy: UndeclaredMetricPolicy = { kind: "throw" };
const warned = new Set<string>();

interface MeterInstruments {
  meter: Meter;
  counters: Map<string, Counter>;
  histograms: Map<string, Histogram>;
  gauges: Set<string>;
}
const extraProviders: MeterInstruments[] = [];
let globalMeter: { provider: MeterProvider; m: MeterInstruments } | undefined;
/** Gauge series: name → serialized tags → last value. */
const gaugeSeries = new Map<string, Map<string, { value: number; tags: Tags }>>();

/** Installs (or removes) the DogStatsD sink. Called from the composition root. */
export function setStatsd(client: StatsdLike | undefined): void {
  statsd = client;
}

/** Sets the policy for undeclared names/tags (default: throw). The entry point sets "drop". */
export function setUndeclaredMetricPolicy(p: UndeclaredMetricPolicy): void {
  policy = p;
}

/** Adds an OpenTelemetry meter provider (e.g. one with the Prometheus reader) next to the global one. Returns its removal. */
export function addMeterProvider(provider: MeterProvider): () => void {
  const m = instrumentsFor(provider.getMeter("coordinator"));
  extraProviders.push(m);
  // Gauges already known are observed by the new provider too.
  for (const name of gaugeSeries.keys()) ensureGauge(m, name, metricSpec(name)!);
  return () => {
    const i = extraProviders.indexOf(m);
    if (i >= 0) extraProviders.splice(i, 1);
  };
}

/** Adds `value` (default 1) to a declared counter, e.g. `count("requests", { outcome: "shed" })`. */
export function count(name: string, tags?: Tags, value = 1): void {
  const spec = check(name, "counter", tags);
  if (!spec) return;
  const t = allowedTags(name, spec, tags);
  for (const m of meters()) {
    let c = m.counters.get(name);
    if (!c)
      m.counters.set(
        name,
        (c = m.meter.createCounter(`coordinator.${name}`, { unit: spec.unit, description: spec.description })),
      );
    c.add(value, t as Attributes | undefined);
  }
  statsd?.increment(name, value, strTags(t));
}

/** Records one observation in a declared distribution (durations in ms: named `*_ms`). */
export function observe(name: string, value: number, tags?: Tags): void {
  const spec = check(name, "distribution", tags);
  if (!spec) return;
  const t = allowedTags(name, spec, tags);
  for (const m of meters()) {
    let h = m.histograms.get(name);
    if (!h) {
      const advice = spec.buckets ? { explicitBucketBoundaries: [...spec.buckets] } : {};
      m.histograms.set(
        name,
        (h = m.meter.createHistogram(`coordinator.${name}`, {
          unit: spec.unit,
          description: spec.description,
          advice,
        })),
      );
    }
    h.record(value, t as Attributes | undefined);
  }
  statsd?.distribution(name, value, strTags(t));
}

/** Sets a declared gauge's current value: observed by OTel on collection, re-sent to DogStatsD on the interval. */
export function gauge(name: string, value: number, tags?: Tags): void {
  const spec = check(name, "gauge", tags);
  if (!spec) return;
  const t = allowedTags(name, spec, tags) ?? {};
  let series = gaugeSeries.get(name);
  if (!series) gaugeSeries.set(name, (series = new Map()));
  for (const m of meters()) ensureGauge(m, name, spec);
  series.set(JSON.stringify(t), { value, tags: t });
  statsd?.gauge(name, value, strTags(t));
}

/**
 * Re-sends every gauge series to DogStatsD every `intervalMs` (so a quiet gauge has no gaps), calling `refresh`
 * first so snapshot-derived gauges (fleet per model) are current. Returns the stop function.
 */
export function reportGaugesEvery(intervalMs: number, refresh: () => void = () => undefined): () => void {
  const tick = () => {
    try {
      refresh();
    } catch (e) {
      warnOnce("gauge-refresh", "gauge refresh failed", { error: String(e) });
    }
    if (!statsd) return;
    for (const [name, series] of gaugeSeries)
      for (const s of series.values()) statsd.gauge(name, s.value, strTags(s.tags));
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

function meters(): MeterInstruments[] {
  // The global provider changes when the SDK starts (or a test installs one): instruments follow it.
  const provider = otel.getMeterProvider();
  if (globalMeter?.provider !== provider)
    globalMeter = { provider, m: instrumentsFor(provider.getMeter("coordinator")) };
  return extraProviders.length === 0 ? [globalMeter.m] : [globalMeter.m, ...extraProviders];
}

function instrumentsFor(meter: Meter): MeterInstruments {
  return { meter, counters: new Map(), histograms: new Map(), gauges: new Set() };
}

function ensureGauge(m: MeterInstruments, name: string, spec: MetricSpec): void {
  if (m.gauges.has(name)) return;
  m.gauges.add(name);
  m.meter
    .createObservableGauge(`coordinator.${name}`, { unit: spec.unit, description: spec.description })
    .addCallback((r) => {
      for (const { value, tags } of gaugeSeries.get(name)?.values() ?? []) r.observe(value, tags as Attributes);
    });
}

function check(name: string, type: MetricSpec["type"], tags: Tags | undefined): MetricSpec | undefined {
  const spec = metricSpec(name);
  if (spec && spec.type === type) return spec;
  refuse(
    `metric:${name}`,
    spec ? `metric ${name} is a ${spec.type}, recorded as a ${type}` : `metric ${name} is not in the metric catalogue`,
    { metric: name, tags: tags ? Object.keys(tags) : [] },
  );
  return undefined;
}

function allowedTags(name: string, spec: MetricSpec, tags: Tags | undefined): Tags | undefined {
  if (!tags) return undefined;
  let out: Tags | undefined;
  for (const k of Object.keys(tags)) {
    if (spec.tags.includes(k)) continue;
    refuse(`tag:${name}:${k}`, `tag ${k} is not declared for metric ${name}`, { metric: name, tag: k });
    out ??= { ...tags };
    delete out[k];
  }
  return out ?? tags;
}

function refuse(key: string, message: string, fields: Record<string, unknown>): void {
  if (policy.kind === "throw") throw new Error(`${message} (src/telemetry/metric-catalogue.ts)`);
  warnOnce(key, message, fields);
}

function warnOnce(key: string, message: string, fields: Record<string, unknown>): void {
  if (warned.has(key) || policy.kind !== "drop") return;
  warned.add(key);
  policy.log(`${message}; dropped`, fields);
}

function strTags(tags: Tags | undefined): Record<string, string> | undefined {
  if (!tags) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags)) out[k] = String(v);
  return out;
}
