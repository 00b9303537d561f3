/**
 * A cluster node's forward counters, read from its Prometheus endpoint (`METRICS_PROMETHEUS=on`): shared by the
 * cluster benchmark (totals per node) and the load generator (forwards over one cell's measured window).
 */

/** A node's `cluster.forwards` counters by outcome (the requesting node counts each forward once). */
export async function forwardOutcomes(baseUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^coordinator_cluster_forwards\S*\{[^}]*outcome="(\w+)"[^}]*\} (\S+)$/gm))
    out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  return out;
}

/** Forwards the nodes at these base URLs made and their owners accepted, in all; NaN if any node cannot be read. */
export async function acceptedForwards(baseUrls: readonly string[]): Promise<number> {
  try {
    const counts = await Promise.all(baseUrls.map(forwardOutcomes));
    return counts.reduce((n, c) => n + (c.accepted ?? 0), 0);
  } catch {
    return Number.NaN;
  }
}
