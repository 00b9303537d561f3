/**
 * The DogStatsD packets of a real flow (issue 15): a UDP listener stands in for the Datadog agent, a real
 * coordinator serves simulated Macs over gRPC, one request fails over once (the warm Mac's failure script) and
 * one is shed with a 429 by a small queue. The lines must name catalogued metrics with the right DogStatsD types
 * (`|c`, `|d` distributions, `|g`) and tags, including the failing provider's id, and shedding must never be
 * counted as a dispatch failure or observed as a duration.
 */
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import StatsD from "hot-shots";
import { metricCatalogue, type MetricType } from "../../../src/telemetry/metric-catalogue.js";
import { setStatsd } from "../../../src/telemetry/metrics.js";
import { startTestCoordinator, type TestCoordinator } from "../../support/coordinator.js";
import { postJson } from "../../support/http.js";

interface Line {
  name: string;
  value: number;
  type: string;
  tags: Record<string, string>;
}

/** Parses `coordinator.name:value|type|#k:v,k:v`. */
function parse(raw: string): Line {
  const m = /^coordinator\.([^:]+):([^|]+)\|([a-z]+)(?:\|#(.*))?$/.exec(raw);
  assert.ok(m, `a DogStatsD line: ${raw}`);
  const tags: Record<string, string> = {};
  for (const kv of (m[4] ?? "").split(",").filter(Boolean)) {
    const i = kv.indexOf(":");
    tags[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return { name: m[1]!, value: Number(m[2]), type: m[3]!, tags };
}

const statsdType: Record<MetricType, string> = { counter: "c", distribution: "d", gauge: "g" };

describe("DogStatsD: the packets of a real flow", function () {
  this.timeout(60_000);
  let t: TestCoordinator | undefined;
  let socket: Socket;
  let client: InstanceType<typeof StatsD>;
  const raw: string[] = [];

  before(async () => {
    socket = createSocket("udp4");
    await new Promise<void>((r) => socket.bind(0, "127.0.0.1", () => r()));
    socket.on("message", (m) => raw.push(...m.toString().split("\n").filter(Boolean)));
    client = new StatsD({ host: "127.0.0.1", port: socket.address().port, prefix: "coordinator.", maxBufferSize: 0 });
    setStatsd(client);
  });
  after(async () => {
    setStatsd(undefined);
    await t?.close();
    await new Promise<void>((r) => client.close(() => r()));
    socket.close();
  });

  it("sends typed, catalogued, tagged lines for a failover (naming the failing provider) and a shed 429", async () => {
    const slow = {
      maxConcurrency: 1,
      instant: false,
      timeScale: 1,
      diskGbs: 1_000,
      naturalTokens: { min: 60, max: 60 },
    };
    t = await startTestCoordinator({
      config: { queueLimit: 1, queueWaitMs: 30_000, metricsGaugeIntervalMs: 100 },
      // The warm Mac fails its first request before content; its peer holds the model on disk only, so routing
      // tries the warm one first and fails over once.
      macs: [
        { ...slow, failures: { script: [{ kind: "error_before_content", afterRole: true }] } },
        { ...slow, warmModels: [] },
      ],
    });
    const bad = t.macs[0]!;
    const url = `${t.apiBase}/chat/completions`;
    const body = { model: "gpt-oss-20b", max_tokens: 8, messages: [{ role: "user", content: "Say hello" }] };

    const failedOver = await postJson(url, t.apiKey, { ...body, stream: true });
    assert.equal(failedOver.status, 200, failedOver.text);

    // Both Macs take one request at a time: two long requests fill them, a third waits in the queue (limit 1),
    // and the fourth is shed with a 429.
    const long = { ...body, max_tokens: 60 };
    const running = [postJson(url, t.apiKey, long), postJson(url, t.apiKey, long)];
    await new Promise((r) => setTimeout(r, 150));
    const queued = postJson(url, t.apiKey, long);
    await new Promise((r) => setTimeout(r, 100));
    const shed = await postJson(url, t.apiKey, body);
    assert.equal(shed.status, 429, shed.text);
    assert.match(shed.text, /queue for gpt-oss-20b is full/);
    for (const r of await Promise.all([...running, queued])) assert.equal(r.status, 200, r.text);
    await new Promise((r) => setTimeout(r, 300)); // a gauge interval and the last UDP packets

    const lines = raw.map(parse);
    // Every line is a catalogued metric of its declared type with declared tag keys only.
    for (const l of lines) {
      const spec = (metricCatalogue as Record<string, { type: MetricType; tags: readonly string[] }>)[l.name];
      assert.ok(spec, `${l.name} is in the catalogue`);
      assert.equal(l.type, statsdType[spec.type], `${l.name} is sent as |${statsdType[spec.type]}`);
      for (const k of Object.keys(l.tags)) assert.ok(spec.tags.includes(k), `${l.name} may carry tag ${k}`);
    }
    const find = (name: string, tags: Record<string, string>) =>
      lines.filter((l) => l.name === name && Object.entries(tags).every(([k, v]) => l.tags[k] === v));

    // The failover names the failing provider, the model and the reason.
    const retry = find("inference.dispatches", {
      status: "retry_precontent",
      provider_id: bad.providerId!,
      model: "gpt-oss-20b",
      reason: "provider_error",
    });
    assert.equal(retry.length, 1, raw.filter((r) => r.includes("dispatches")).join("\n"));
    assert.equal(find("inference.dispatches", { status: "success", model: "gpt-oss-20b" }).length, 4);
    // Shedding is shedding: requests{outcome:shed} with its route and status, never a dispatch failure nor a duration.
    assert.equal(
      find("requests", {
        route: "/v1/chat/completions",
        dialect: "chat",
        model: "gpt-oss-20b",
        status: "429",
        outcome: "shed",
      }).length,
      1,
    );
    assert.equal(find("requests", { route: "/v1/chat/completions", status: "200", outcome: "success" }).length, 4);
    assert.equal(find("inference.shed", { model: "gpt-oss-20b", reason: "capacity_exhausted" }).length, 1);
    assert.equal(find("request_queue.rejected", { model: "gpt-oss-20b", reason: "full" }).length, 1);
    assert.equal(
      find("inference.dispatches", { status: "failure" }).length,
      0,
      "a shed request is not a dispatch failure",
    );
    const durations = find("inference.duration_ms", { model: "gpt-oss-20b" });
    assert.equal(durations.length, 4, "one end-to-end duration per served request, none for the shed one");
    assert.ok(durations.every((d) => d.type === "d" && d.value > 0));
    // Latencies are distributions with bounded tags.
    assert.equal(find("inference.ttft_ms", { model: "gpt-oss-20b" }).length, 4);
    assert.ok(find("http.latency_ms", { route: "/v1/chat/completions", status: "429" }).length === 1);
    assert.ok(find("request_queue.wait_ms", { model: "gpt-oss-20b" }).length >= 1);
    // Tokens and money, per model (earnings per provider).
    assert.ok(find("tokens.output", { model: "gpt-oss-20b" }).reduce((s, l) => s + l.value, 0) > 0);
    assert.ok(find("billing.spend_micro_usd", { model: "gpt-oss-20b" }).length === 4);
    assert.ok(
      find("billing.provider_earnings_micro_usd", { model: "gpt-oss-20b", provider_id: t.macs[1]!.providerId! })
        .length >= 1,
    );
    // Gauges on the interval: the fleet per model and the queue.
    assert.ok(
      find("fleet.routable_providers", { model: "gpt-oss-20b" }).some((l) => l.value === 2),
      "routable providers gauge",
    );
    assert.ok(
      find("fleet.warm_providers", { model: "gpt-oss-20b" }).length >= 2,
      "warm providers re-sent on the interval",
    );
    assert.ok(find("providers.connected", {}).some((l) => l.value === 2));
    assert.ok(
      find("request_queue.depth", { model: "gpt-oss-20b" }).some((l) => l.value === 1),
      "the queued request was visible",
    );
    // No tag carries a request id or a key.
    for (const r of raw) assert.ok(!/req_|sk-/.test(r), `no request id or key in ${r}`);
  });
});
