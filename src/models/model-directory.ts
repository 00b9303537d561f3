/**
 * What the coordinator knows about a model id, before any provider is picked: whether it exists, what it can do
 * (context, images), its default output budget, and the list `/v1/models` shows. The catalog speaks for its
 * models; a model only some provider advertises is described by the builds on offer. An alias (model-aliases.ts)
 * is described by its desired build and listed instead of its builds: consumers see only public names.
 */
import { catalogEntry, type CatalogEntry } from "./catalog.js";
import type { ModelCatalog, ModelLimits, ModelListEntry } from "./model-catalog.js";
import type { ProviderModel } from "../registry/types.js";
import { ModelAliases } from "./model-aliases.js";

/** The slice of the provider registry the directory reads. */
export interface AdvertisedModels {
  forModel(model: string): readonly { models: readonly ProviderModel[] }[];
  advertisedModels(): Iterable<string>;
}

const noAliases = new ModelAliases();

/** Output budget for a request without max_tokens, for a model the catalog does not know. */
const FALLBACK_DEFAULT_MAX_TOKENS = 8192;

export class ModelDirectory implements ModelCatalog {
  readonly #catalog: readonly CatalogEntry[];
  readonly #registry: AdvertisedModels;
  readonly #aliases: () => ModelAliases;

  /** `aliases` is read on every call: an alias change takes effect at once. */
  constructor(
    catalog: readonly CatalogEntry[],
    registry: AdvertisedModels,
    aliases: () => ModelAliases = () => noAliases,
  ) {
    this.#catalog = catalog;
    this.#registry = registry;
    this.#aliases = aliases;
  }

  /** An alias's desired build; any other name is its own build. */
  #build(model: string): string {
    return this.#aliases().get(model)?.build ?? model;
  }

  /** An alias, in the catalog, or advertised by a connected provider. */
  isKnown(model: string): boolean {
    if (this.#aliases().get(model)) return true;
    return catalogEntry(this.#catalog, model) !== undefined || this.#registry.forModel(model).length > 0;
  }

  /** Catalog first (O(1) on the request path); an uncatalogued model is read off its providers' builds. */
  limits(model: string): ModelLimits | undefined {
    model = this.#build(model);
    const c = catalogEntry(this.#catalog, model);
    if (c) return { contextLength: c.contextLength, acceptsImages: c.isVision };
    let contextLength = 0;
    let acceptsImages = false;
    for (const p of this.#registry.forModel(model)) {
      for (const b of p.models) {
        if (b.id !== model) continue;
        contextLength = Math.max(contextLength, b.contextLength);
        acceptsImages ||= b.isVision;
      }
    }
    return contextLength > 0 ? { contextLength, acceptsImages } : undefined;
  }

  defaultMaxTokens(model: string): number {
    return catalogEntry(this.#catalog, this.#build(model))?.defaultMaxTokens ?? FALLBACK_DEFAULT_MAX_TOKENS;
  }

  /** Every model a consumer can ask for (aliases ∪ catalog ∪ advertised, less the builds behind an alias), sorted by id. */
  list(): ModelListEntry[] {
    const aliases = this.#aliases();
    const ids = new Set(
      [...this.#catalog.map((m) => m.id), ...this.#registry.advertisedModels()].filter((id) => !aliases.isAliased(id)),
    );
    for (const a of aliases.list()) ids.add(a.alias);
    return [...ids].sort().map((id) => {
      const alias = aliases.get(id);
      if (alias) {
        const c = catalogEntry(this.#catalog, alias.build);
        const limits = this.limits(id);
        return {
          id,
          contextLength: limits?.contextLength ?? 0,
          isVision: limits?.acceptsImages ?? false,
          ...(c
            ? { inputMicroUsdPerMtok: c.inputMicroUsdPerMtok, outputMicroUsdPerMtok: c.outputMicroUsdPerMtok }
            : {}),
        };
      }
      const c = catalogEntry(this.#catalog, id);
      if (c)
        return {
          id,
          contextLength: c.contextLength,
          isVision: c.isVision,
          inputMicroUsdPerMtok: c.inputMicroUsdPerMtok,
          outputMicroUsdPerMtok: c.outputMicroUsdPerMtok,
        };
      const limits = this.limits(id);
      return { id, contextLength: limits?.contextLength ?? 0, isVision: limits?.acceptsImages ?? false };
    });
  }
}
