import assert from "node:assert/strict";
import { defaultCatalog } from "../../../src/models/catalog.js";
import { ModelDirectory, type AdvertisedModels } from "../../../src/models/model-directory.js";
import type { ProviderModel } from "../../../src/registry/types.js";

const build = (id: string, contextLength: number, isVision: boolean): ProviderModel => ({
  id,
  sizeBytes: 1,
  quantization: "4bit",
  contextLength,
  isVision,
  templateRenderOk: undefined,
});

/** Two providers: one advertises a catalog model with a bigger context, both advertise an uncatalogued one. */
const registry: AdvertisedModels = {
  forModel: (m) =>
    [
      { models: [build("gpt-oss-20b", 262_144, true), build("local-7b", 8_192, false)] },
      { models: [build("local-7b", 32_768, true)] },
    ].filter((p) => p.models.some((b) => b.id === m)),
  advertisedModels: () => ["gpt-oss-20b", "local-7b"],
};
const dir = new ModelDirectory(defaultCatalog, registry);

describe("ModelDirectory", () => {
  it("lets the catalog speak for its models, whatever a build advertises", () => {
    assert.deepEqual(dir.limits("gpt-oss-20b"), { contextLength: 131_072, acceptsImages: false });
    assert.equal(dir.defaultMaxTokens("gpt-oss-20b"), 8192);
  });

  it("describes an uncatalogued model by the best of its builds", () => {
    assert.deepEqual(dir.limits("local-7b"), { contextLength: 32_768, acceptsImages: true });
    assert.equal(dir.isKnown("local-7b"), true);
  });

  it("knows nothing of a model nobody has", () => {
    assert.equal(dir.isKnown("nope"), false);
    assert.equal(dir.limits("nope"), undefined);
  });

  it("lists catalog and advertised models once each, sorted, with catalog prices only for catalog models", () => {
    const list = dir.list();
    assert.deepEqual(
      list.map((m) => m.id),
      [...new Set([...defaultCatalog.map((m) => m.id), "local-7b"])].sort(),
    );
    const local = list.find((m) => m.id === "local-7b")!;
    assert.deepEqual(local, { id: "local-7b", contextLength: 32_768, isVision: true });
    assert.ok(list.find((m) => m.id === "gpt-oss-20b")!.inputMicroUsdPerMtok! > 0);
  });
});
