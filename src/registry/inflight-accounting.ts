/**
 * The coordinator's own accounting of requests in flight on one provider, between its heartbeats: what the
 * rate samples are corrected for, and how a finished request's reservation leaves the provider's slots.
 */
import type { RequestId } from "../inference/types.js";
import type { ProviderRecord } from "./provider-record.js";
import type { InflightRequest } from "./types.js";

/** Prompt tokens of the provider's in-flight requests that have not streamed a token yet (as scheduler/cost.ts counts them). */
export function promptTokensInPrefill(rec: ProviderRecord): number {
  let sum = 0;
  for (const r of rec.inflight.values())
    if (r.promptTokens !== undefined && r.usedTokens <= r.promptTokens) sum += r.promptTokens;
  return sum;
}

/** The concurrency a request ran under: the provider's other requests in flight, and those on the same model. */
export function concurrencyAround(
  rec: ProviderRecord,
  requestId: RequestId,
  model: string,
): { otherStreamsOnModel: number; otherRequestsOnProvider: number } {
  let otherStreamsOnModel = 0;
  let otherRequestsOnProvider = 0;
  for (const r of rec.inflight.values()) {
    if (r.requestId === requestId) continue;
    otherRequestsOnProvider++;
    if (r.model === model) otherStreamsOnModel++;
  }
  return { otherStreamsOnModel, otherRequestsOnProvider };
}

/**
 * Takes a finished request out of the slot the last heartbeat counted it in. Replaces `rec.slots` (never edits
 * it) since scheduler snapshots hold the old array by reference.
 */
export function releaseFromSlots(rec: ProviderRecord, req: InflightRequest): void {
  const i = rec.slots.findIndex((s) => s.model === req.model);
  const slot = rec.slots[i];
  if (!slot) return;
  rec.slots = rec.slots.slice();
  rec.slots[i] = {
    ...slot,
    numRunning: Math.max(0, slot.numRunning - 1),
    tokenBudgetUsed: Math.max(0, slot.tokenBudgetUsed - Math.max(req.usedTokens, req.reservedTokens)),
  };
}
