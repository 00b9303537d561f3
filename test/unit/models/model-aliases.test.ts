import assert from "node:assert/strict";
import { AliasBook, ModelAliases, type ModelAlias } from "../../../src/models/model-aliases.js";

const gpt: ModelAlias = { alias: "gpt-oss-20b", build: "gpt-oss-20b-mlx-q8", previousBuild: "gpt-oss-20b-mlx-q4" };
// Shares its desired build with `gpt`'s desired build.
const fast: ModelAlias = { alias: "gpt-fast", build: "gpt-oss-20b-mlx-q8" };

describe("ModelAliases", () => {
  it("resolves an alias to its desired then previous build, in its own pool", () => {
    const r = new ModelAliases([gpt]).resolve("gpt-oss-20b");
    assert.equal(r.publicModel, "gpt-oss-20b");
    assert.equal(r.isAlias, true);
    assert.deepEqual(r.builds, ["gpt-oss-20b-mlx-q8", "gpt-oss-20b-mlx-q4"]);
    assert.deepEqual([...r.pools], ["gpt-oss-20b"]);
  });

  it("resolves an alias without a previous build to its one build", () => {
    assert.deepEqual(new ModelAliases([fast]).resolve("gpt-fast").builds, ["gpt-oss-20b-mlx-q8"]);
  });

  it("resolves a name no alias has to itself, in its own pool when no alias names it", () => {
    const r = new ModelAliases([gpt]).resolve("qwen3-8b");
    assert.equal(r.isAlias, false);
    assert.deepEqual(r.builds, ["qwen3-8b"]);
    assert.deepEqual([...r.pools], ["qwen3-8b"]);
  });

  it("resolves an aliased build asked for by name to the pools of the aliases naming it", () => {
    const r = new ModelAliases([gpt, fast]).resolve("gpt-oss-20b-mlx-q8");
    assert.equal(r.isAlias, false);
    assert.deepEqual(r.builds, ["gpt-oss-20b-mlx-q8"]);
    assert.deepEqual([...r.pools].sort(), ["gpt-fast", "gpt-oss-20b"]);
  });

  it("puts a build two aliases share in both pools, and a previous build in its alias's pool only", () => {
    const a = new ModelAliases([gpt, fast]);
    assert.deepEqual([...a.poolsOfBuild("gpt-oss-20b-mlx-q8")].sort(), ["gpt-fast", "gpt-oss-20b"]);
    assert.deepEqual([...a.poolsOfBuild("gpt-oss-20b-mlx-q4")], ["gpt-oss-20b"]);
    assert.equal(a.isAliased("gpt-oss-20b-mlx-q8"), true);
    assert.equal(a.isAliased("qwen3-8b"), false);
    assert.deepEqual([...a.poolsOfBuild("qwen3-8b")], ["qwen3-8b"], "an unaliased build is its own pool");
  });

  it("lists an alias's builds as its pool's, and a build as its own pool's", () => {
    const a = new ModelAliases([gpt, fast]);
    assert.deepEqual(a.buildsOfPool("gpt-oss-20b"), ["gpt-oss-20b-mlx-q8", "gpt-oss-20b-mlx-q4"]);
    assert.deepEqual(a.buildsOfPool("gpt-fast"), ["gpt-oss-20b-mlx-q8"]);
    assert.deepEqual(a.buildsOfPool("qwen3-8b"), ["qwen3-8b"]);
  });

  it("says a pool is no longer a provider's once its alias is removed, while the other owning alias keeps it", () => {
    const builds = ["gpt-oss-20b-mlx-q8"];
    const before = new ModelAliases([gpt, fast]);
    assert.equal(before.isPoolOf("gpt-fast", builds), true);
    assert.equal(before.isPoolOf("gpt-oss-20b", builds), true);
    const after = new ModelAliases([gpt]);
    assert.equal(after.isPoolOf("gpt-fast", builds), false, "the removed alias's pool is gone");
    assert.equal(after.isPoolOf("gpt-oss-20b", builds), true, "the other owner still routes the shared build");
    assert.equal(after.isPoolOf("gpt-oss-20b-mlx-q8", builds), false, "an aliased build is not a pool of its own");
    const none = new ModelAliases([]);
    assert.equal(none.isPoolOf("gpt-oss-20b", builds), false);
    assert.equal(
      none.isPoolOf("gpt-oss-20b-mlx-q8", builds),
      true,
      "with no alias left the build is its own pool again",
    );
  });

  it("lists, gets and counts its aliases", () => {
    const a = new ModelAliases([gpt, fast]);
    assert.equal(a.size, 2);
    assert.deepEqual(
      a.list().map((x) => x.alias),
      ["gpt-fast", "gpt-oss-20b"],
      "sorted by alias",
    );
    assert.deepEqual(a.get("gpt-oss-20b"), gpt);
    assert.equal(a.get("nope"), undefined);
  });
});

describe("AliasBook", () => {
  it("replaces its table wholesale and tells every listener the new and previous tables", () => {
    const book = new AliasBook([gpt]);
    const seen: [string[], string[]][] = [];
    book.onChange((next, previous) =>
      seen.push([next.list().map((a) => a.alias), previous.list().map((a) => a.alias)]),
    );
    book.replace([fast]);
    assert.equal(book.current.resolve("gpt-fast").isAlias, true);
    assert.equal(book.current.resolve("gpt-oss-20b").isAlias, false);
    assert.deepEqual(seen, [[["gpt-fast"], ["gpt-oss-20b"]]]);
  });
});
