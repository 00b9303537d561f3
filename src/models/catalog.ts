/**
 * The models this coordinator serves, with their static facts and default prices. A model in the catalog is
 * "known": requests for it are accepted (and queued) even while no provider serving it is connected.
 * Providers may also advertise models outside the catalog; those become routable while such a provider is
 * connected.
 */
/** Static facts about a model the coordinator serves (from configuration). */
export interface CatalogModel {
  id: string;
  /** Injected when a request has no max_tokens. */
  defaultMaxTokens: number;
  contextLength: number;
  sizeBytes: number;
  isVision: boolean;
}

export interface CatalogEntry extends CatalogModel {
  /** Default prices, integer micro-USD per million tokens (overridable in the ledger). */
  inputMicroUsdPerMtok: number;
  outputMicroUsdPerMtok: number;
  /** Typical KV-cache cost per token, used by the fleet simulator to report realistic budgets. */
  kvBytesPerToken: number;
}

const GB = 1_000_000_000;

/** The built-in catalog. */
export const defaultCatalog: readonly CatalogEntry[] = Object.freeze([
  {
    id: "gpt-oss-20b",
    defaultMaxTokens: 8192,
    contextLength: 131_072,
    sizeBytes: 12 * GB,
    isVision: false,
    inputMicroUsdPerMtok: 50_000,
    outputMicroUsdPerMtok: 200_000,
    kvBytesPerToken: 49_152,
  },
  {
    id: "gemma-4-26b",
    defaultMaxTokens: 8192,
    contextLength: 131_072,
    sizeBytes: 16 * GB,
    isVision: true,
    inputMicroUsdPerMtok: 80_000,
    outputMicroUsdPerMtok: 300_000,
    kvBytesPerToken: 172_032,
  },
  {
    id: "qwen3-8b",
    defaultMaxTokens: 8192,
    contextLength: 32_768,
    sizeBytes: 5 * GB,
    isVision: false,
    inputMicroUsdPerMtok: 30_000,
    outputMicroUsdPerMtok: 120_000,
    kvBytesPerToken: 147_456,
  },
]);

/** Looks up a catalog entry by id. */
export function catalogEntry(catalog: readonly CatalogEntry[], id: string): CatalogEntry | undefined {
  return catalog.find((m) => m.id === id);
}
