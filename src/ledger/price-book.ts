/**
 * Model prices: `model_prices` rows override the defaults passed in (the coordinator passes its catalog
 * prices); models in neither use the policy fallback. Rows are cached and refreshed off the request path.
 */
import type { Kysely } from "kysely";
import type { Clock } from "../util/clock.js";
import type { Database } from "./schema.js";
import { defaultPricingPolicy, type ModelPrice, type PricingPolicy } from "./pricing.js";

export type DefaultPrices = Readonly<
  Record<string, { inputMicroUsdPerMtok: number | bigint; outputMicroUsdPerMtok: number | bigint }>
>;

export class PriceBook {
  readonly #db: Kysely<Database>;
  readonly #clock: Clock;
  readonly #defaults = new Map<string, ModelPrice>();
  readonly #policy: PricingPolicy;
  readonly #refreshMs: number;
  #stored = new Map<string, ModelPrice>();
  #loadedAtMs = -Infinity;
  #loading: Promise<void> | undefined;

  constructor(options: {
    db: Kysely<Database>;
    clock: Clock;
    defaults?: DefaultPrices;
    policy?: PricingPolicy;
    refreshMs?: number;
  }) {
    this.#db = options.db;
    this.#clock = options.clock;
    this.#policy = options.policy ?? defaultPricingPolicy;
    this.#refreshMs = options.refreshMs ?? 30_000;
    for (const [model, p] of Object.entries(options.defaults ?? {})) {
      this.#defaults.set(model, {
        inputMicroUsdPerMtok: BigInt(p.inputMicroUsdPerMtok),
        outputMicroUsdPerMtok: BigInt(p.outputMicroUsdPerMtok),
      });
    }
  }

  /** The price for `model`; loads stored prices on first use, then refreshes in the background. */
  async price(model: string): Promise<ModelPrice> {
    if (this.#loadedAtMs === -Infinity) await this.#load();
    else if (this.#clock.nowMs() - this.#loadedAtMs > this.#refreshMs) void this.#load().catch(() => {});
    return this.#stored.get(model) ?? this.#defaults.get(model) ?? this.#policy.fallback;
  }

  /** Records a price set through this process (visible immediately here, elsewhere after a refresh). */
  remember(model: string, price: ModelPrice): void {
    this.#stored.set(model, price);
  }

  #load(): Promise<void> {
    this.#loading ??= (async () => {
      try {
        const rows = await this.#db.selectFrom("model_prices").selectAll().execute();
        this.#stored = new Map(
          rows.map((r) => [
            r.model,
            { inputMicroUsdPerMtok: r.input_micro_usd_per_mtok, outputMicroUsdPerMtok: r.output_micro_usd_per_mtok },
          ]),
        );
        this.#loadedAtMs = this.#clock.nowMs();
      } finally {
        this.#loading = undefined;
      }
    })();
    return this.#loading;
  }
}
