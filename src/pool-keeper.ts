/**
 * Applies the model-pool decisions (scheduler/model-pools.ts) to the live registry: seeds a provider's pool from
 * its first heartbeat, reseeds the providers an alias change releases, carries out reassignments the dispatcher's
 * picks name, and says which pools a request may use. With MODEL_POOLS=false (the kill switch) it does nothing
 * and every constraint is absent, so routing is exactly the pool-less policy.
 */
import type { ProviderRegistry } from "./registry/provider-registry.js";
import type { ProviderView } from "./registry/types.js";
import type { DemandTracker } from "./scheduler/demand-tracker.js";
import type { AliasBook } from "./models/model-aliases.js";
import { needsSeeding, seedPool, type PoolLoad } from "./scheduler/model-pools.js";
import { count } from "./telemetry/metrics.js";
import type { Clock } from "./util/clock.js";
import type { Logger } from "./util/logger.js";

export interface PoolKeeperOptions {
  enabled: boolean;
  registry: ProviderRegistry;
  aliases: AliasBook;
  demand: DemandTracker;
  clock: Clock;
  log: Logger;
}

export class PoolKeeper {
  readonly #o: PoolKeeperOptions;

  constructor(o: PoolKeeperOptions) {
    this.#o = o;
    if (!o.enabled) return;
    o.registry.onHeartbeat((rec) => {
      if (needsSeeding(rec, o.aliases.current)) this.#seed(rec, "heartbeat");
    });
    // A removed or repointed alias releases its providers: each is reseeded from what it holds.
    o.aliases.onChange((next) => {
      for (const p of o.registry.view().providers) if (needsSeeding(p, next)) this.#seed(p, "alias_change");
    });
  }

  get enabled(): boolean {
    return this.#o.enabled;
  }

  /** The pools a request for `model` (an alias or a build) may use; undefined with pools off. */
  poolsOf(model: string): ReadonlySet<string> | undefined {
    return this.#o.enabled ? this.#o.aliases.current.resolve(model).pools : undefined;
  }

  /** Carries out a reassignment a pick named (synchronously, before the dispatch it precedes). */
  reassign(providerId: string, pool: string): void {
    const rec = this.#o.registry.get(providerId);
    if (!rec) return;
    const from = rec.pool;
    this.#o.registry.setPool(providerId, pool);
    count("pools.reassignments", { pool });
    this.#o.log.info("provider reassigned to a starved pool", {
      provider_id: providerId,
      account_id: rec.accountId,
      from_pool: from ?? null,
      pool,
    });
  }

  #seed(p: ProviderView, why: "heartbeat" | "alias_change"): void {
    const pool = seedPool(p, this.#o.aliases.current, this.#load());
    this.#o.registry.setPool(p.id, pool);
    count("pools.assignments", { reason: why });
    this.#o.log.info("provider pool assigned", {
      provider_id: p.id,
      account_id: p.accountId,
      pool: pool ?? null,
      reason: why,
    });
  }

  /**
   * Demand per pool (sum over its builds) and members per pool, read fresh for one seeding decision. Members come
   * from the registry's running count: every new Mac is seeded, so a scan of the fleet here made a ramp of n Macs
   * cost n² (7.5 % of the coordinator's CPU in the capacity bench's ramp to 10,000 Macs).
   */
  #load(): PoolLoad {
    const { registry, aliases, demand, clock } = this.#o;
    const snapshot = demand.snapshot(clock.nowMs());
    return {
      demandPerS: (pool) =>
        aliases.current.buildsOfPool(pool).reduce((s, b) => s + (snapshot.get(b)?.arrivalRatePerS ?? 0), 0),
      members: (pool) => registry.poolMembers(pool),
    };
  }
}
