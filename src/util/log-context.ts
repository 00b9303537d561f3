/**
 * Fields added to every log line written inside a scope (a consumer request: its request id and trace ids),
 * carried by AsyncLocalStorage so callers need not thread them through. A callback that runs on another
 * async context (a provider's stream event) joins the scope through `AsyncLocalStorage.bind` at the point
 * where it was registered.
 */
import { AsyncLocalStorage } from "node:async_hooks";

const store = new AsyncLocalStorage<Readonly<Record<string, unknown>>>();

/** Runs `fn` with `fields` added to every log line written inside it (nested scopes add to the outer ones). */
export function withLogFields<T>(fields: Record<string, unknown>, fn: () => T): T {
  const outer = store.getStore();
  return store.run(outer ? { ...outer, ...fields } : fields, fn);
}

/** The fields of the current scope (empty outside any). */
export function currentLogFields(): Readonly<Record<string, unknown>> {
  return store.getStore() ?? {};
}
