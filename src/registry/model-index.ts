/**
 * The registry's per-model indices (model → providers), kept in step with membership and warm slots so the
 * scheduler reads candidate lists without scanning the whole fleet.
 */
import type { ProviderRecord } from "./provider-record.js";

/** Appends `rec` to `model`'s list, creating the list on first use. */
export function addTo(index: Map<string, ProviderRecord[]>, model: string, rec: ProviderRecord): void {
  let list = index.get(model);
  if (!list) index.set(model, (list = []));
  list.push(rec);
}

/** Removes `rec` from `model`'s list; an emptied list is dropped so the index only names served models. */
export function removeFrom(index: Map<string, ProviderRecord[]>, model: string, rec: ProviderRecord): void {
  const list = index.get(model);
  if (!list) return;
  const i = list.indexOf(rec);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) index.delete(model);
}

/** Models a provider has loaded (a running or idle slot): what the warm index lists it under. */
export function warmModelsOf(rec: ProviderRecord): Set<string> {
  const warm = new Set<string>();
  for (const s of rec.slots) if (s.state === "running" || s.state === "idle") warm.add(s.model);
  return warm;
}
