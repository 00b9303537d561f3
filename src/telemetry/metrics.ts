/**
 * The one place code records metrics. Every instrument goes to both OpenTelemetry (via @opentelemetry/api;
 * the SDK is installed by the entry point, or the API's no-op is used) and DogStatsD (hot-shots, when a
 * client is configured). Tags are small closed sets; never put request or provider ids in tags.
 */
import { metrics as otel, type Attributes } from "@opentelemetry/api";

export type Tags = Record<string, string | number | boolean>;

/** The subset of a hot-shots client the facade uses (so tests can pass a fake). */
export interface StatsdLike {
  increment(stat: string, value: number, tags?: Record<string, string>): void;
  histogram(stat: string, value: number, tags?: Record<string, string>): void;
  gauge(stat: string, value: number, tags?: Record<string, string>): void;
}

let statsd: StatsdLike | undefined;
const meter = () => otel.getMeter("coordinator");
const counters = new Map<string, ReturnType<ReturnType<typeof meter>["createCounter"]>>();
const histograms = new Map<string, ReturnType<ReturnType<typeof meter>["createHistogram"]>>();
const gaugeKeys = new Map<string, Map<string, { value: number; tags: Attributes }>>();

/** Installs (or removes) the DogStatsD sink. Called from the composition root. */
export function setStatsd(client: StatsdLike | undefined): void {
  statsd = client;
}

function strTags(tags: Tags | undefined): Record<string, string> | undefined {
  if (!tags) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags)) out[k] = String(v);
  return out;
}

/** Adds `value` (default 1) to a counter, e.g. `count("dispatch.outcome", { outcome: "retry" })`. */
export function count(name: string, tags?: Tags, value = 1): void {
  let c = counters.get(name);
  if (!c) counters.set(name, (c = meter().createCounter(`coordinator.${name}`)));
  c.add(value, tags as Attributes | undefined);
  statsd?.increment(name, value, strTags(tags));
}

/** Records one observation in a histogram (durations in ms: name them `*_ms`). */
export function observe(name: string, value: number, tags?: Tags): void {
  let h = histograms.get(name);
  if (!h) histograms.set(name, (h = meter().createHistogram(`coordinator.${name}`)));
  h.record(value, tags as Attributes | undefined);
  statsd?.histogram(name, value, strTags(tags));
}

/** Sets a gauge's current value (reported by an observable gauge on OTel collection). */
export function gauge(name: string, value: number, tags?: Tags): void {
  let series = gaugeKeys.get(name);
  if (!series) {
    series = new Map();
    gaugeKeys.set(name, series);
    const s = series;
    meter()
      .createObservableGauge(`coordinator.${name}`)
      .addCallback((r) => {
        for (const { value: v, tags: t } of s.values()) r.observe(v, t);
      });
  }
  series.set(JSON.stringify(tags ?? {}), { value, tags: (tags ?? {}) as Attributes });
  statsd?.gauge(name, value, strTags(tags));
}

