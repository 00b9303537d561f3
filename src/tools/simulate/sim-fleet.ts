/**
 * The per-run fleet: builds the modelled Macs ({@link SimProvider}) from a scenario and the catalog, and the
 * coordinator's registry views of them ({@link CoordView}) that the real scheduler reads, and how a heartbeat
 * refreshes a view.
 */
import type { CatalogEntry } from "../../models/catalog.js";
import type { InflightRequest, ProviderView } from "../../registry/types.js";
import type { Scenario } from "./scenario.js";
import { SimProvider, type ModelFacts } from "./sim-provider.js";

/** The coordinator's view of one Mac, with its in-flight requests and pending loads kept as mutable maps. */
export type CoordView = Omit<ProviderView, "inflight" | "pendingLoads" | "slots"> & {
  slots: ProviderView["slots"];
  inflight: Map<string, InflightRequest>;
  pendingLoads: Map<string, number>;
};

/** The modelled Macs and the coordinator's views of them, each also by id. */
export interface SimFleet {
  macs: SimProvider[];
  macById: Map<string, SimProvider>;
  views: CoordView[];
  viewById: Map<string, CoordView>;
  registryView: { providers: CoordView[] };
}

/** Builds a scenario's fleet, every Mac idle and unseen at time 0. */
export function buildFleet(scenario: Scenario, catalog: readonly CatalogEntry[]): SimFleet {
  const facts = new Map<string, ModelFacts>(
    catalog.map((m) => [
      m.id,
      {
        sizeBytes: m.sizeBytes,
        kvBytesPerToken: m.kvBytesPerToken,
        contextLength: m.contextLength,
        isVision: m.isVision,
      },
    ]),
  );
  const perf = new Map(scenario.perf.map((p) => [p.id, p]));
  const macs = scenario.fleet.map(
    (spec, i) => new SimProvider(`mac${i}`, spec, perf, facts, scenario.providerMaxConcurrency),
  );
  const macById = new Map(macs.map((m) => [m.id, m]));
  const views: CoordView[] = macs.map((m) => ({
    id: m.id,
    serial: m.id,
    accountId: "acct",
    version: m.spec.version,
    hardware: {
      chipName: m.spec.chipName,
      chipFamily: m.spec.chipFamily,
      memoryGb: m.spec.memoryGb,
      memoryBandwidthGbs: m.spec.memoryBandwidthGbs,
      gpuCores: 0,
    },
    decodeTps: m.soloTps(m.spec.models[0] ?? ""),
    prefillTps: m.prefillTps(m.spec.models[0] ?? ""),
    maxModelSlots: m.spec.maxModelSlots,
    models: m.advertisedModels(),
    status: "idle",
    memoryPressure: 0,
    cpuUsage: 0,
    thermal: "nominal",
    totalMemoryGb: m.spec.memoryGb,
    freeForLoadGb: m.spec.reportsFreeForLoad ? m.freeForLoadGb() : undefined,
    slots: [],
    warmModels: [],
    lastHeartbeatMs: 0,
    connectedAtMs: 0,
    inflight: new Map(),
    pendingLoads: new Map(),
  }));
  const viewById = new Map(views.map((v) => [v.id, v]));
  const registryView = { providers: views };
  return { macs, macById, views, viewById, registryView };
}

/** Refreshes the coordinator's view of `m` from its heartbeat at `nowMs`, as the registry does. */
export function applyHeartbeat(v: CoordView, m: SimProvider, nowMs: number): void {
  v.slots = m.heartbeatSlots();
  v.warmModels = v.slots.filter((s) => s.state !== "loading").map((s) => s.model);
  v.freeForLoadGb = m.spec.reportsFreeForLoad ? m.freeForLoadGb() : undefined;
  v.status = v.slots.some((s) => s.numRunning > 0) ? "serving" : "idle";
  v.lastHeartbeatMs = nowMs;
  for (const r of v.inflight.values()) r.seenByProvider = true;
  for (const s of v.slots) if (s.state !== "loading") v.pendingLoads.delete(s.model);
  v.heartbeats = (v.heartbeats ?? 0) + 1;
}
