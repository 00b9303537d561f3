/**
 * The intake step of the inference pipeline: the body read, bounded, repaired and parsed into the dialect's
 * normalized request, the caller's routing constraints taken out of it, and the model's own limits applied. Kept
 * apart from inference-route.ts because everything here happens before any provider is consulted: every refusal
 * is the caller's 4xx, nothing is routed, limited or reserved yet.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { repairToolSchemas } from "../dialects/shared/tool-schema-repair.js";
import type { Dialect } from "../dialects/shared/types.js";
import { CoordinatorError } from "../errors/coordinator-error.js";
import type { NormalizedRequest } from "../inference/types.js";
import { requireKnownModel, type ModelCatalog } from "../models/model-catalog.js";
import type { BodyBudget } from "./body-budget.js";
import { parseJson, readBody } from "./read-body.js";
import {
  assertJsonWithinLimits,
  assertRequestWithinLimits,
  assertUserFieldsWithinLimits,
  parseContextFor,
  type RequestLimits,
} from "./request-limits.js";
import { takeRouteConstraints, type RouteConstraints } from "./route-constraints.js";

/** What intake reads from the route's dependencies (see InferenceDeps). */
export interface IntakeDeps {
  models: ModelCatalog;
  maxBodyBytes: number;
  bodyBudget: BodyBudget;
  limits: RequestLimits;
}

/**
 * Reads, bounds, repairs and parses the body into the dialect's normalized request, and takes the caller's own
 * routing constraints out of it. Every refusal here is a 4xx before anything is routed or reserved.
 */
export async function readRequest(
  deps: IntakeDeps,
  dialect: Dialect,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<{ body: unknown; constraints: RouteConstraints; normalized: NormalizedRequest }> {
  const raw = await readBody(req, res, { maxBytes: deps.maxBodyBytes, budget: deps.bodyBudget });
  // Structure first: tool-schema repair and every later step recurse or re-serialise the body.
  assertJsonWithinLimits(raw, deps.limits);
  const body = parseJson(repairToolSchemas(raw));
  assertUserFieldsWithinLimits(body, deps.limits);
  const constraints = takeRouteConstraints(body, req.headers["x-route"]);
  const normalized = dialect.parse(body, parseContextFor(deps.models, deps.limits));
  assertRequestWithinLimits(normalized, deps.limits);
  requireKnownModel(deps.models, normalized.model);
  return { body, constraints, normalized };
}

/**
 * What the model itself rules out, before any provider is consulted: images sent to a model no build of which
 * takes them is the caller's mistake (400, not a retryable 503). And no build generates past its context, so
 * a larger max_tokens is budgeted (admission, rate limits, reservation) as the room the context leaves:
 * otherwise a request with `max_tokens: 100000000` would wait for a Mac big enough to hold it, which never
 * comes. The provider still receives the caller's value and stops at its context.
 */
export function applyModelLimits(deps: Pick<IntakeDeps, "models">, n: NormalizedRequest): void {
  const limits = deps.models.limits(n.model);
  if (!limits) return;
  if (n.traits.requiresVision && !limits.acceptsImages) {
    throw new CoordinatorError("invalid_request", `the model '${n.model}' does not accept image input`, {
      param: "messages",
      wireCode: "image_input_not_supported",
    });
  }
  // The room is what the context leaves after the prompt (the estimate; at least 1): a full-context request then
  // fits any Mac that can hold the context. Should the estimate run high, the reservation is slightly low and
  // the settlement is clamped to it: the platform, never the consumer, absorbs that.
  const room = Math.max(1, limits.contextLength - n.traits.estimatedPromptTokens);
  if (limits.contextLength > 0 && n.traits.maxTokens > room) n.traits = { ...n.traits, maxTokens: room };
  // The Mac is asked for at most the context: no answer is longer, and the output it may stream is bounded by what
  // it was asked for (request-run.ts outputTokenCeiling), which a max_tokens of 10^9 would make no bound at all.
  const sent = n.body.max_tokens;
  if (limits.contextLength > 0 && typeof sent === "number" && sent > limits.contextLength)
    n.body = { ...n.body, max_tokens: limits.contextLength };
}
