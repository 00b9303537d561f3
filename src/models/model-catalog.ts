/**
 * What the HTTP layer asks about a model id, before any provider is consulted. `ModelDirectory`
 * (model-directory.ts) implements it over the catalog and the connected fleet.
 */
import { CoordinatorError } from "../errors/coordinator-error.js";

/** One entry of `GET /v1/models`. */
export interface ModelListEntry {
  id: string;
  contextLength: number;
  isVision: boolean;
  inputMicroUsdPerMtok?: number;
  outputMicroUsdPerMtok?: number;
}

/** What any build of a model can do. */
export interface ModelLimits {
  /** The largest context of any build, tokens. */
  contextLength: number;
  /** Some build takes image input. */
  acceptsImages: boolean;
}

export interface ModelCatalog {
  /** In the catalog, or advertised by a connected provider. */
  isKnown(model: string): boolean;
  limits(model: string): ModelLimits | undefined;
  /** Output budget for a request that sets none (also the dialects' `ParseContext`). */
  defaultMaxTokens(model: string): number;
  /** Every model a consumer can ask for (catalog ∪ advertised), sorted by id. */
  list(): ModelListEntry[];
}

/** The one 404 for a model id nobody serves, in every route and dialect. */
export function modelNotFound(model: string): CoordinatorError {
  return new CoordinatorError("model_not_found", `the model '${model}' does not exist`, {
    param: "model",
    wireCode: "model_not_found",
  });
}

/** Throws {@link modelNotFound} unless the catalog knows `model`. */
export function requireKnownModel(models: Pick<ModelCatalog, "isKnown">, model: string): void {
  if (!models.isKnown(model)) throw modelNotFound(model);
}
