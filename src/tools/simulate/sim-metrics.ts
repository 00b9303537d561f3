/**
 * A run's metrics: the per-model {@link ModelStats} the event loop counts into, the periodic fleet samples,
 * and the assembly of the final {@link SimulationReport}.
 */
import { ModelStats, type SimulationReport } from "./report.js";
import type { CoordView } from "./sim-fleet.js";
import type { SimProvider } from "./sim-provider.js";
import type { SimRequest } from "./sim-request.js";

/** Per-model statistics of one run, in first-seen order. */
export class SimMetrics {
  readonly stats = new Map<string, ModelStats>();

  /** The model's statistics, created at first use. */
  of(model: string): ModelStats {
    let s = this.stats.get(model);
    if (!s) this.stats.set(model, (s = new ModelStats(model)));
    return s;
  }

  /**
   * Samples, per model seen so far: Macs loaded and running it, requests in flight, pool members, and the
   * spread (requests per running Mac) when a capable Mac sits idle. `burst`: a finite burst is sending or running.
   */
  sample(
    macs: readonly SimProvider[],
    running: ReadonlyMap<string, SimRequest>,
    views: readonly CoordView[],
    pooled: boolean,
    burst: boolean,
  ): void {
    for (const model of new Set([...this.stats.keys()])) {
      let loaded = 0;
      let runningMacs = 0;
      for (const m of macs) {
        if (m.isLoaded(model)) loaded++;
        if (m.isRunning(model)) runningMacs++;
      }
      this.of(model).loadedSamples.push(loaded);
      let inflight = 0;
      for (const r of running.values()) if (r.route.model === model) inflight++;
      this.of(model).inflightSamples.push(inflight);
      this.of(model).runningSamples.push(runningMacs);
      if (!burst) this.of(model).runningBetweenBurstsSamples.push(runningMacs);
      // Spread: requests per running Mac while a Mac that could serve the model runs nothing at all (cold or idle).
      const idleCapable = macs.some(
        (m) => m.online && m.spec.models.includes(model) && m.fitsMemory(model) && m.isIdle(),
      );
      if (idleCapable && runningMacs > 0) this.of(model).spreadSamples.push(inflight / runningMacs);
      if (pooled) this.of(model).poolMemberSamples.push(views.filter((v) => v.pool === model).length);
    }
  }

  /** Settles the end-of-run figures (still queued, capable Macs, busy time) and assembles the report. */
  report(
    header: Omit<SimulationReport, "macs" | "models">,
    macs: readonly SimProvider[],
    queueDepth: (model: string) => number,
  ): SimulationReport {
    // Capable Macs over the run (churn: those online at some point; all of them without churn).
    const capableMacs = (model: string) =>
      macs.filter((m) => m.spec.models.includes(model) && m.fitsMemory(model)).length;
    for (const st of this.stats.values()) {
      st.stillQueued = queueDepth(st.model);
      st.capableMacs = capableMacs(st.model);
      let busy = 0;
      for (const m of macs) busy += m.busyMsByModel.get(st.model) ?? 0;
      st.busyMacMs = busy;
    }
    return {
      ...header,
      macs: macs.length,
      models: [...this.stats.values()]
        .sort((a, b) => a.model.localeCompare(b.model))
        .map((s) => s.summary(header.durationMs)),
    };
  }
}
