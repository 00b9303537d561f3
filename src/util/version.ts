/**
 * Provider binary version comparison for capability floors (e.g. tools need >= 0.6.3). Semver-ish and
 * tolerant: a `v`/`V` prefix, missing components (`0.6` = `0.6.0`), `+build` metadata (ignored) and
 * pre-release suffixes (`-rc.2`, `-beta`) are accepted. Pure.
 */

interface ParsedVersion {
  core: number[];
  /** Dot-separated pre-release identifiers; empty for a release. */
  pre: string[];
}

const VERSION_RE = /^[vV]?(\d+(?:\.\d+)*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/** Parses a version string, or returns undefined when it is empty or not version-shaped. */
export function parseVersion(version: string): ParsedVersion | undefined {
  const m = VERSION_RE.exec(version.trim());
  if (!m) return undefined;
  return { core: m[1]!.split(".").map(Number), pre: m[2] ? m[2].split(".") : [] };
}

/**
 * Orders two versions: negative if `a < b`, 0 if equal, positive if `a > b`. Components compare
 * numerically (`0.10.0 > 0.9.9`); a pre-release sorts before its release (`0.6.3-rc.1 < 0.6.3`) and
 * pre-release identifiers compare as in semver (numeric ones numerically, `rc.10 > rc.9`). An unparseable
 * or empty version sorts below every parseable one; two unparseable versions are equal.
 */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (!pa || !pb) return (pa ? 1 : 0) - (pb ? 1 : 0);
  const n = Math.max(pa.core.length, pb.core.length);
  for (let i = 0; i < n; i++) {
    const d = (pa.core[i] ?? 0) - (pb.core[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  if (pa.pre.length === 0 || pb.pre.length === 0) return (pa.pre.length === 0 ? 1 : 0) - (pb.pre.length === 0 ? 1 : 0);
  const m = Math.max(pa.pre.length, pb.pre.length);
  for (let i = 0; i < m; i++) {
    const x = pa.pre[i];
    const y = pb.pre[i];
    if (x === undefined) return -1; // fewer identifiers sorts first (rc < rc.1)
    if (y === undefined) return 1;
    const xn = /^\d+$/.test(x);
    const yn = /^\d+$/.test(y);
    if (xn && yn) {
      const d = Number(x) - Number(y);
      if (d !== 0) return Math.sign(d);
    } else if (xn !== yn) {
      return xn ? -1 : 1; // numeric identifiers sort before alphanumeric ones
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}

/**
 * True when `version` is at or above `floor`. An empty or unparseable version never meets a floor (a provider
 * that does not say what it runs cannot be trusted with a capability), and a release candidate of the floor
 * itself does not meet it (`0.6.3-rc.1` is before `0.6.3`). An empty floor is met by everything.
 */
export function meetsFloor(version: string, floor: string): boolean {
  // The scheduler's gates ask this per candidate per tool request; a fleet runs a handful of versions, so the
  // answers are memoised (bounded) instead of re-parsing with a regex each time.
  let byVersion = floorMemo.get(floor);
  if (!byVersion) floorMemo.set(floor, (byVersion = new Map()));
  let met = byVersion.get(version);
  if (met === undefined) {
    met = floor.trim() === "" || (parseVersion(version) !== undefined && compareVersions(version, floor) >= 0);
    if (byVersion.size >= 1024) byVersion.clear();
    byVersion.set(version, met);
  }
  return met;
}

const floorMemo = new Map<string, Map<string, boolean>>();
