/**
 * Model loads and unloads on a simulated Mac, with their protocol side: ModelLoadStatus frames (STARTED,
 * SUCCEEDED, FAILED, UNLOADED for evictions), a heartbeat whenever the resident set changes, and a timer per
 * load for its simulated duration. The memory rules themselves are ModelSlots'; this owns the timers.
 */
import { ErrorReason, LoadState } from "../../../gen/coordinator/provider/v1/provider_pb.js";
import type { Cancel, Clock } from "../../util/clock.js";
import { scaledMs } from "./inference-run.js";
import type { ModelSlots, Slot } from "./model-slots.js";

/** What the loader needs from its Mac. */
export interface ModelLoaderHost {
  slots: ModelSlots;
  clock: Clock;
  /** Simulated ms per real ms, and whether loads are immediate (as the Mac's runs). */
  timing: { timeScale: number; instant: boolean };
  sendLoadStatus(model: string, state: LoadState, extra?: { error?: string; loadTimeMs?: number }): void;
  heartbeat(): void;
  log(line: string): void;
}

/** A load's outcome for a request: the model is ready, will be (await `slot.whenReady`), or was refused. */
export type LoadResult =
  | { kind: "ready"; slot: Slot }
  | { kind: "pending"; slot: Slot }
  | { kind: "refused"; reason: ErrorReason; message: string };

/** The load timers of one Mac. */
export class MacModelLoader {
  readonly #host: ModelLoaderHost;
  readonly #timers = new Set<Cancel>();

  constructor(host: ModelLoaderHost) {
    this.#host = host;
  }

  /**
   * Starts (or joins) a load. `beforeStart` runs just before ModelLoadStatus STARTED, so an inference
   * request can send InferenceAccepted first. Returns the ready slot, a pending one, or a refusal.
   */
  begin(model: string, beforeStart?: () => void): LoadResult {
    const h = this.#host;
    const d = h.slots.beginLoad(model, h.clock.nowMs());
    if (d.kind === "loaded") return { kind: "ready", slot: d.slot };
    if (d.kind === "loading") {
      beforeStart?.();
      return { kind: "pending", slot: d.slot };
    }
    if (d.kind === "refused") {
      h.sendLoadStatus(model, LoadState.FAILED, { error: d.message });
      const reason =
        d.reason === "insufficient_memory"
          ? ErrorReason.INSUFFICIENT_MEMORY
          : d.reason === "no_free_slot"
            ? ErrorReason.CAPACITY
            : ErrorReason.MODEL_LOAD_FAILED;
      return { kind: "refused", reason, message: d.message };
    }
    for (const evicted of d.evicted) h.sendLoadStatus(evicted, LoadState.UNLOADED);
    beforeStart?.();
    h.sendLoadStatus(model, LoadState.STARTED);
    const slot = d.slot;
    slot.whenReady = new Promise<boolean>((resolve) => {
      const finish = () => {
        this.#timers.delete(cancel);
        if (h.slots.get(model) !== slot) return resolve(false);
        h.slots.finishLoad(model);
        h.sendLoadStatus(model, LoadState.SUCCEEDED, { loadTimeMs: slot.loadTimeMs });
        h.log(`loaded ${model} in ${slot.loadTimeMs} ms (simulated)`);
        h.heartbeat();
        resolve(true);
      };
      const cancel = h.clock.setTimeout(finish, scaledMs(h.timing, slot.loadTimeMs));
      this.#timers.add(() => {
        cancel();
        resolve(false);
      });
    });
    h.heartbeat();
    return { kind: "pending", slot };
  }

  /** Unloads `model` on the coordinator's request; reports it only if it was resident. */
  unload(model: string): void {
    if (this.#host.slots.unload(model)) {
      this.#host.sendLoadStatus(model, LoadState.UNLOADED);
      this.#host.heartbeat();
    }
  }

  /** Abandons every load in progress (their waiters see `false`). */
  cancelAll(): void {
    for (const cancel of this.#timers) cancel();
    this.#timers.clear();
  }
}
