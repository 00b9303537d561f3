/**
 * The live set of connected providers: what each last reported (Register, Heartbeat) plus the coordinator's
 * own accounting of work dispatched there. Pure state and transitions (no I/O, no timers); the protocol edge
 * feeds it and the scheduler reads {@link ProviderRegistry.view} snapshots.
 *
 * Records are mutated in place and handed to the scheduler by reference, so a pick over thousands of
 * providers copies nothing; the scheduler treats them as read-only.
 */
import { defaultCatalog } from "../models/catalog.js";
import type { RequestId } from "../inference/types.js";
import { clampHeartbeat, type ClaimModel, type ClampedClaim } from "./claim-bounds.js";
import { concurrencyAround, promptTokensInPrefill, releaseFromSlots } from "./inflight-accounting.js";
import { addTo, removeFrom, warmModelsOf } from "./model-index.js";
import { foldRates, rateSamples, type RateObservation } from "./observed-rates.js";
import { countClamped, ProviderRecord } from "./provider-record.js";
import type {
  InflightRequest,
  MirroredState,
  ModelRates,
  ProviderHeartbeat,
  ProviderId,
  ProviderRegistration,
  ProviderView,
  RegistryView,
} from "./types.js";

export type { ProviderHeartbeat, ProviderRegistration };
export { ProviderRecord };

/** Listener for changes that may free capacity (so the dispatcher can drain its queues). */
export type CapacityListener = (model: string | undefined) => void;

/** How a registry is built. */
export interface ProviderRegistryOptions {
  /** Models with known sizes and KV costs, for the claim bounds (claim-bounds.ts). Default: the built-in catalog. */
  catalog?: readonly ClaimModel[];
}

export class ProviderRegistry {
  readonly #catalog: readonly ClaimModel[];
  readonly #byId = new Map<ProviderId, ProviderRecord>();
  readonly #bySerial = new Map<string, ProviderRecord>();
  readonly #byModel = new Map<string, ProviderRecord[]>();
  readonly #warmByModel = new Map<string, ProviderRecord[]>();
  /** Models each provider is currently indexed as warm for. */
  readonly #warmOf = new Map<ProviderId, Set<string>>();
  /** Providers per model pool, kept in step with every `pool` change (seeding reads it once per new Mac). */
  readonly #poolMembers = new Map<string, number>();
  #list: ProviderRecord[] | undefined;
  #nextId = 1;
  readonly #listeners: CapacityListener[] = [];
  readonly #heartbeatListeners: ((rec: ProviderRecord) => void)[] = [];
  /** Prompt tokens waiting for their prefill on the Mac when each in-flight request was added (observeRates). */
  readonly #promptAhead = new WeakMap<InflightRequest, number>();

  constructor(options: ProviderRegistryOptions = {}) {
    this.#catalog = options.catalog ?? defaultCatalog;
  }

  /**
   * Adds a provider session under `id` (the machine's stable opaque id; generated when omitted, e.g. in unit
   * tests). A record with the same serial or id must be removed first (see {@link bySerial}).
   */
  add(
    r: ProviderRegistration,
    nowMs: number,
    id: ProviderId = `prov_local_${(this.#nextId++).toString(36)}`,
  ): ProviderRecord {
    if (this.#byId.has(id)) throw new Error(`provider ${id} is already registered`);
    const rec = new ProviderRecord(id, r, nowMs, this.#catalog);
    this.#byId.set(id, rec);
    this.#bySerial.set(r.serial, rec);
    for (const m of rec.models) addTo(this.#byModel, m.id, rec);
    this.#list = undefined;
    this.#emit(undefined);
    return rec;
  }

  remove(id: ProviderId): ProviderRecord | undefined {
    const rec = this.#byId.get(id);
    if (!rec) return undefined;
    this.#byId.delete(id);
    if (this.#bySerial.get(rec.serial) === rec) this.#bySerial.delete(rec.serial);
    for (const m of rec.models) removeFrom(this.#byModel, m.id, rec);
    for (const m of this.#warmOf.get(id) ?? []) removeFrom(this.#warmByModel, m, rec);
    this.#warmOf.delete(id);
    this.#countPool(rec.pool, -1);
    this.#list = undefined;
    return rec;
  }

  get(id: ProviderId): ProviderRecord | undefined {
    return this.#byId.get(id);
  }

  bySerial(serial: string): ProviderRecord | undefined {
    return this.#bySerial.get(serial);
  }

  get size(): number {
    return this.#byId.size;
  }

  /** Providers that have `model` on disk. */
  forModel(model: string): readonly ProviderRecord[] {
    return this.#byModel.get(model) ?? [];
  }

  /** Every model some connected provider advertises. */
  advertisedModels(): string[] {
    return [...this.#byModel.keys()];
  }

  /** A snapshot for the scheduler (records by reference; the array is rebuilt only on membership change). */
  view(): RegistryView & { byModel: ReadonlyMap<string, readonly ProviderView[]> } {
    this.#list ??= [...this.#byId.values()];
    return { providers: this.#list, byModel: this.#byModel, warmByModel: this.#warmByModel };
  }

  /**
   * Applies a heartbeat, its claims first clamped to the provider's physical bounds and, for observed rates, to
   * 1.2 × what the coordinator measured (claim-bounds.ts). Returns what was clamped (empty for an honest Mac).
   */
  applyHeartbeat(id: ProviderId, claimed: ProviderHeartbeat, nowMs: number): readonly ClampedClaim[] {
    const rec = this.#byId.get(id);
    if (!rec) return [];
    const { heartbeat: hb, clamped } = clampHeartbeat(claimed, {
      hardware: rec.hardware,
      advertisedBytes: (model) => rec.models.find((m) => m.id === model)?.sizeBytes ?? 0,
      catalog: this.#catalog,
      measured: (model) => rec.modelRates.get(model),
    });
    countClamped(clamped, "heartbeat");
    rec.status = hb.status;
    rec.memoryPressure = hb.memoryPressure;
    rec.cpuUsage = hb.cpuUsage;
    rec.thermal = hb.thermal;
    if (hb.totalMemoryGb > 0) rec.totalMemoryGb = hb.totalMemoryGb;
    rec.freeForLoadGb = hb.freeForLoadGb;
    rec.slots = hb.slots;
    rec.warmModels = hb.warmModels;
    this.#reindexWarm(rec);
    rec.lastHeartbeatMs = nowMs;
    // The provider's token-budget numbers now include every request it has accepted, so the coordinator must
    // stop adding its own reservation for those on top (no double counting).
    for (const req of rec.inflight.values()) if (req.startedByProvider) req.seenByProvider = true;
    for (const s of hb.slots) {
      if (s.state === "running" || s.state === "idle") rec.pendingLoads.delete(s.model);
    }
    rec.heartbeats++;
    // Before the capacity event: a pool seeded from this heartbeat is in place when queued requests re-pick.
    for (const l of this.#heartbeatListeners) l(rec);
    this.#emit(undefined);
    return clamped;
  }

  /**
   * Mirrors a Mac whose stream another coordinator owns (cluster mode), creating the record on first sight. Its
   * state is the owner's, taken as is (the owner already clamped the claims): status, slots, pool, pending loads,
   * and the owner's in-flight accounting, which replaces the previous mirror's. Requests this process dispatched
   * there itself stay its own (they end through {@link removeInflight}); once the owner counts one too, its
   * provider-seen flags are taken over so the slot numbers and the entry are not counted twice. Heartbeat
   * listeners are not told (pools are the owner's to seed); queued requests re-pick.
   */
  mirror(id: ProviderId, registration: ProviderRegistration, state: MirroredState, nowMs: number): ProviderRecord {
    const rec = this.#byId.get(id) ?? this.add(registration, nowMs, id);
    rec.remote = true;
    rec.status = state.status;
    rec.memoryPressure = state.memoryPressure;
    rec.cpuUsage = state.cpuUsage;
    rec.thermal = state.thermal;
    if (state.totalMemoryGb > 0) rec.totalMemoryGb = state.totalMemoryGb;
    rec.freeForLoadGb = state.freeForLoadGb;
    rec.slots = state.slots;
    rec.warmModels = state.warmModels;
    this.#assignPool(rec, state.pool);
    this.#reindexWarm(rec);
    const fresh = new Set<RequestId>();
    for (const r of state.inflight) {
      fresh.add(r.requestId);
      const own = rec.inflight.get(r.requestId);
      if (own && !own.mirrored) {
        own.startedByProvider ||= r.startedByProvider === true;
        own.seenByProvider ||= r.seenByProvider;
      } else rec.inflight.set(r.requestId, { ...r, mirrored: true });
    }
    for (const [rid, r] of rec.inflight) if (r.mirrored && !fresh.has(rid)) rec.inflight.delete(rid);
    rec.pendingLoads.clear();
    for (const m of state.pendingLoads) rec.pendingLoads.set(m, nowMs);
    rec.lastHeartbeatMs = nowMs;
    rec.heartbeats++;
    this.#emit(undefined);
    return rec;
  }

  /**
   * Folds the rates the coordinator measured on a completed request into the provider's per-model EWMA
   * (observed-rates.ts); the scheduler uses them instead of the provider's claims from then on. The other requests
   * in flight on the provider (all but `o.requestId`) are the concurrency the decode sample is corrected for,
   * and the prompts that were ahead of it when it was added are counted into the prefill sample, so call it
   * before the in-flight entry is removed.
   * Returns the model's updated rates (undefined for an unknown provider or a model it does not advertise).
   */
  observeRates(id: ProviderId, model: string, o: RateObservation): ModelRates | undefined {
    const rec = this.#byId.get(id);
    const prev = rec?.modelRates.get(model);
    if (!rec || !prev) return undefined;
    const mine = rec.inflight.get(o.requestId);
    const promptTokensAhead = mine ? this.#promptAhead.get(mine) : undefined;
    const next = foldRates(prev, rateSamples(o, { ...concurrencyAround(rec, o.requestId, model), promptTokensAhead }));
    rec.modelRates.set(model, next);
    return next;
  }

  /**
   * Sets the factor the scheduler multiplies this provider's cost estimate by (1 = no penalty), e.g. for a
   * provider whose reported usage does not match what was streamed. Throws on a factor that is not ≥ 1.
   */
  setCostPenalty(id: ProviderId, factor: number): void {
    if (!(factor >= 1) || !Number.isFinite(factor))
      throw new RangeError(`cost penalty factor must be a finite number >= 1, got ${factor}`);
    const rec = this.#byId.get(id);
    if (rec) rec.costPenaltyFactor = factor;
  }

  /**
   * Assigns the provider to a model pool (undefined: none). The caller decides (scheduler/model-pools.ts); queued
   * requests re-pick at once, since the provider may now serve them.
   */
  setPool(id: ProviderId, pool: string | undefined): void {
    const rec = this.#byId.get(id);
    if (!rec || rec.pool === pool) return;
    this.#assignPool(rec, pool);
    this.#emit(undefined);
  }

  /** How many providers are in `pool` now. */
  poolMembers(pool: string): number {
    return this.#poolMembers.get(pool) ?? 0;
  }

  #assignPool(rec: ProviderRecord, pool: string | undefined): void {
    if (rec.pool === pool) return;
    this.#countPool(rec.pool, -1);
    this.#countPool(pool, +1);
    rec.pool = pool;
  }

  #countPool(pool: string | undefined, delta: 1 | -1): void {
    if (pool === undefined) return;
    const n = (this.#poolMembers.get(pool) ?? 0) + delta;
    if (n > 0) this.#poolMembers.set(pool, n);
    else this.#poolMembers.delete(pool);
  }

  /** Subscribes to applied heartbeats (after the record is updated, before the capacity event). */
  onHeartbeat(listener: (rec: ProviderRecord) => void): void {
    this.#heartbeatListeners.push(listener);
  }

  /** Keeps the warm index in step with the provider's slots (only touches lists whose membership changed). */
  #reindexWarm(rec: ProviderRecord): void {
    const now = warmModelsOf(rec);
    const before = this.#warmOf.get(rec.id) ?? new Set<string>();
    for (const m of before) if (!now.has(m)) removeFrom(this.#warmByModel, m, rec);
    for (const m of now) if (!before.has(m)) addTo(this.#warmByModel, m, rec);
    this.#warmOf.set(rec.id, now);
  }

  /** Any frame from a provider proves it is alive. */
  touch(id: ProviderId, nowMs: number): void {
    const rec = this.#byId.get(id);
    if (rec) rec.lastHeartbeatMs = nowMs;
  }

  addInflight(id: ProviderId, req: InflightRequest): void {
    const rec = this.#byId.get(id);
    if (!rec) return;
    this.#promptAhead.set(req, promptTokensInPrefill(rec));
    rec.inflight.set(req.requestId, req);
  }

  /** The provider sent its first frame for the request: later heartbeats account for it. */
  markStarted(id: ProviderId, requestId: RequestId): void {
    const req = this.#byId.get(id)?.inflight.get(requestId);
    if (req) req.startedByProvider = true;
  }

  /** Records streamed progress so admission reserves max(reserved, used). */
  addUsedTokens(id: ProviderId, requestId: RequestId, tokens: number): void {
    const req = this.#byId.get(id)?.inflight.get(requestId);
    if (!req) return;
    req.usedTokens += tokens;
    req.remainingOutputTokens = Math.max(0, req.remainingOutputTokens - tokens);
  }

  removeInflight(id: ProviderId, requestId: RequestId): void {
    const rec = this.#byId.get(id);
    if (!rec) return;
    const req = rec.inflight.get(requestId);
    if (!req) return;
    rec.inflight.delete(requestId);
    // The last heartbeat still counts this request; release it now rather than leaving its slot looking
    // busy until the next heartbeat (that would make finished capacity invisible to queued requests).
    if (req.seenByProvider) releaseFromSlots(rec, req);
    this.#emit(req.model);
  }

  markPendingLoad(id: ProviderId, model: string, nowMs: number): void {
    this.#byId.get(id)?.pendingLoads.set(model, nowMs);
  }

  loadFinished(id: ProviderId, model: string): void {
    const rec = this.#byId.get(id);
    if (!rec) return;
    rec.pendingLoads.delete(model);
    this.#emit(model);
  }

  /** Subscribes to "capacity may have appeared" events (model = undefined: any model). */
  onCapacity(listener: CapacityListener): void {
    this.#listeners.push(listener);
  }

  #emit(model: string | undefined): void {
    for (const l of this.#listeners) l(model);
  }
}
