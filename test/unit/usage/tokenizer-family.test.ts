import assert from "node:assert/strict";
import { defaultCatalog } from "../../../src/models/catalog.js";
import { tokenizerFamilies, tokenizerFamilyFor, type TokenizerFamilyId } from "../../../src/usage/tokenizer-family.js";

describe("tokenizerFamilyFor", () => {
  const table: [string, TokenizerFamilyId][] = [
    ["gpt-oss-20b", "gpt-oss"],
    ["gpt-oss-120b", "gpt-oss"],
    ["openai/gpt-oss-20b", "gpt-oss"],
    ["mlx-community/gpt-oss-20b-MXFP4-Q8", "gpt-oss"],
    ["gemma-4-26b", "gemma"],
    ["mlx-community/gemma-3-27b-it-4bit", "gemma"],
    ["qwen3-8b", "qwen"],
    ["Qwen/Qwen2.5-Coder-7B-Instruct", "qwen"],
    ["Qwen/QwQ-32B", "qwen"],
    ["llama-3.1-8b", "unknown"],
    ["my-gpt-oss-finetune", "unknown"],
    ["", "unknown"],
  ];
  for (const [model, want] of table) {
    it(`maps ${JSON.stringify(model)} to ${want}`, () => assert.equal(tokenizerFamilyFor(model).id, want));
  }

  it("knows the tokenizer of every catalog model", () => {
    for (const m of defaultCatalog) assert.notEqual(tokenizerFamilyFor(m.id).id, "unknown", m.id);
  });

  it("counts gpt-oss exactly and widens the margin for estimated families", () => {
    assert.deepEqual(
      Object.values(tokenizerFamilies).map((f) => [f.id, f.scale, f.tolerance, f.exact]),
      [
        ["gpt-oss", 1, 0.1, true],
        ["gemma", 1.12, 0.25, false],
        ["qwen", 1.1, 0.25, false],
        ["unknown", 1.15, 0.3, false],
      ],
    );
    assert.ok(Object.isFrozen(tokenizerFamilies["gpt-oss"]));
  });
});
