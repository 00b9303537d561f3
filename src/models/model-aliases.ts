/**
 * Public model names (aliases) and the concrete builds behind them, and the pool keys routing derives from them.
 *
 * An alias (e.g. `gpt-oss-20b`) maps to a desired build and, during a rollout, a previous build. Consumers see
 * and send the alias; routing and billing use the build. The pool key of a request for an alias is the alias;
 * a build no alias names is its own pool (so pools work with no alias configured at all). A build may belong to
 * several aliases: a provider assigned to any of them may serve it (the "shared builds stay routable in each
 * owning pool" finding of the model-pools review).
 *
 * Pure data with O(1) lookups, replaced wholesale when an operator changes an alias (no restart).
 */

/** One alias as the operator set it. */
export interface ModelAlias {
  alias: string;
  /** The build new traffic goes to. */
  build: string;
  /** The build that serves while the desired one has no capacity (rollout), if any. */
  previousBuild?: string;
}

/** What a requested model name resolves to. */
export interface ResolvedModel {
  /** The name the consumer sent and sees in responses. */
  publicModel: string;
  /** Builds to try, in order: the desired build, then the previous one (aliases only). */
  builds: readonly string[];
  /** Pool keys whose providers may serve the request. */
  pools: ReadonlySet<string>;
  /** True when `publicModel` is an alias. */
  isAlias: boolean;
}

export class ModelAliases {
  readonly #byAlias: ReadonlyMap<string, ModelAlias>;
  /** Build → the aliases naming it (desired or previous), sorted. */
  readonly #poolsOfBuild: ReadonlyMap<string, ReadonlySet<string>>;

  constructor(aliases: readonly ModelAlias[] = []) {
    const byAlias = new Map<string, ModelAlias>();
    const pools = new Map<string, Set<string>>();
    for (const a of [...aliases].sort((x, y) => (x.alias < y.alias ? -1 : x.alias > y.alias ? 1 : 0))) {
      byAlias.set(a.alias, a);
      for (const b of a.previousBuild !== undefined ? [a.build, a.previousBuild] : [a.build]) {
        let s = pools.get(b);
        if (!s) pools.set(b, (s = new Set()));
        s.add(a.alias);
      }
    }
    this.#byAlias = byAlias;
    this.#poolsOfBuild = pools;
  }

  get size(): number {
    return this.#byAlias.size;
  }

  list(): ModelAlias[] {
    return [...this.#byAlias.values()];
  }

  get(alias: string): ModelAlias | undefined {
    return this.#byAlias.get(alias);
  }

  /** True when some alias names `build` as its desired or previous build (so the build is not listed itself). */
  isAliased(build: string): boolean {
    return this.#poolsOfBuild.has(build);
  }

  /** The pool keys a provider serving `build` may be assigned to: its aliases, or the build itself. */
  poolsOfBuild(build: string): ReadonlySet<string> {
    return this.#poolsOfBuild.get(build) ?? new Set([build]);
  }

  /** Builds whose providers serve pool `pool`: an alias's desired and previous builds, or the build itself. */
  buildsOfPool(pool: string): readonly string[] {
    const a = this.#byAlias.get(pool);
    if (!a) return [pool];
    return a.previousBuild !== undefined ? [a.build, a.previousBuild] : [a.build];
  }

  /** True when `pool` is still a pool key for some provider advertising `builds` (false once its alias is gone). */
  isPoolOf(pool: string, builds: readonly string[]): boolean {
    return builds.some((b) => this.poolsOfBuild(b).has(pool));
  }

  /** Resolves a requested name: an alias to its builds and its own pool; anything else to itself. */
  resolve(model: string): ResolvedModel {
    const a = this.#byAlias.get(model);
    if (a) {
      return {
        publicModel: model,
        builds: a.previousBuild !== undefined ? [a.build, a.previousBuild] : [a.build],
        pools: new Set([model]),
        isAlias: true,
      };
    }
    return { publicModel: model, builds: [model], pools: this.poolsOfBuild(model), isAlias: false };
  }
}

/**
 * The live alias table of one process: the current {@link ModelAliases}, replaced wholesale on change, and the
 * listeners (routing pools) that must react at once. The store behind it (PostgreSQL) is the edge's business.
 */
export class AliasBook {
  #current: ModelAliases;
  readonly #listeners: ((next: ModelAliases, previous: ModelAliases) => void)[] = [];

  constructor(initial: readonly ModelAlias[] = []) {
    this.#current = new ModelAliases(initial);
  }

  get current(): ModelAliases {
    return this.#current;
  }

  /** Installs a new table and tells the listeners; the same table again (a periodic re-read) changes nothing. */
  replace(aliases: readonly ModelAlias[]): void {
    const previous = this.#current;
    if (sameAliases(previous.list(), aliases)) return;
    this.#current = new ModelAliases(aliases);
    for (const l of this.#listeners) l(this.#current, previous);
  }

  onChange(listener: (next: ModelAliases, previous: ModelAliases) => void): void {
    this.#listeners.push(listener);
  }
}

/** Whether two alias lists hold the same aliases, builds and previous builds (in any order). */
function sameAliases(a: readonly ModelAlias[], b: readonly ModelAlias[]): boolean {
  if (a.length !== b.length) return false;
  const key = (x: ModelAlias) => `${x.alias}\u0000${x.build}\u0000${x.previousBuild ?? ""}`;
  const seen = new Set(a.map(key));
  return b.every((x) => seen.has(key(x)));
}
