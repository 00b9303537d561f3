import assert from "node:assert/strict";
import {
  assignChip,
  chipProfile,
  chipProfiles,
  servingChipProfiles,
} from "../../../../src/tools/fleet/chip-profiles.js";
import { drawBehaviour, takeScripted, type ScriptedBehaviour } from "../../../../src/tools/fleet/failure-script.js";
import {
  canLoad,
  concurrentDecodeTps,
  decodeTps,
  freeForLoadGb,
  simModelSpec,
  tokenBudgetMax,
} from "../../../../src/tools/fleet/mac-performance.js";
import {
  countPromptTokens,
  hasNullableOrUntypedSchema,
  naturalLength,
  parseChatBody,
} from "../../../../src/tools/fleet/sim-request.js";
import { compareVersions } from "../../../../src/util/version.js";

const GB = 1e9;
const body = (o: unknown) => parseChatBody(new TextEncoder().encode(JSON.stringify(o)))!;

describe("simulated Mac performance model", () => {
  it("decodes gpt-oss-20b at 60-75 tok/s and gemma-4-26b at 40-60 tok/s on an M4 Max", () => {
    const m4max = chipProfile("m4-max-128")!;
    const oss = decodeTps(m4max, simModelSpec("gpt-oss-20b"));
    const gemma = decodeTps(m4max, simModelSpec("gemma-4-26b"));
    assert.ok(oss >= 60 && oss <= 75, `gpt-oss ${oss}`);
    assert.ok(gemma >= 40 && gemma <= 60, `gemma ${gemma}`);
    assert.ok(decodeTps(chipProfile("m1-max-64")!, simModelSpec("gpt-oss-20b")) < oss, "less bandwidth decodes slower");
  });

  it("degrades the per-stream rate as 1 / (1 + 0.27 (n - 1))", () => {
    assert.equal(concurrentDecodeTps(100, 1), 100);
    assert.equal(concurrentDecodeTps(127, 2), 100);
    assert.ok(Math.abs(concurrentDecodeTps(100, 4) - 100 / 1.81) < 1e-9);
  });

  it("loads only when weights x 3 fit, counting idle models as evictable", () => {
    const gemma = 16 * GB;
    assert.equal(canLoad(48, [], gemma), false); // 43.2 GB available < 48
    assert.equal(canLoad(64, [], gemma), true); // 57.6 ≥ 48
    const busyOss = { id: "gpt-oss-20b", sizeBytes: 12 * GB, idle: false, kvBytesUsed: 0 };
    assert.equal(canLoad(64, [busyOss], gemma), false); // 45.6 < 48
    assert.equal(canLoad(64, [{ ...busyOss, idle: true }], gemma), true);
    assert.equal(freeForLoadGb(64, []), 19.2);
  });

  it("derives the KV token budget from memory left after reserve and weights", () => {
    assert.equal(tokenBudgetMax(64, [16 * GB], 172_032), Math.floor((64e9 - 6.4e9 - 16e9) / 172_032));
    // Two resident models share what is left.
    assert.equal(tokenBudgetMax(128, [12 * GB, 16 * GB], 49_152), Math.floor((128e9 - 12.8e9 - 28e9) / 2 / 49_152));
  });

  it("assigns chips deterministically and covers the pool", () => {
    assert.equal(assignChip(5, 9).key, assignChip(5, 9).key);
    const keys = new Set(Array.from({ length: servingChipProfiles.length }, (_, i) => assignChip(i, 4).key));
    assert.equal(keys.size, servingChipProfiles.length);
    assert.ok(
      chipProfiles.every((c) => c.memoryBandwidthGbs > 0 && c.gpuCores > 0 && c.chipName.startsWith("Apple M")),
    );
  });
});

describe("simulated request helpers", () => {
  it("counts prompt tokens deterministically, growing with text and tools", () => {
    const a = countPromptTokens(body({ messages: [{ role: "user", content: "hello" }] }));
    const b = countPromptTokens(body({ messages: [{ role: "user", content: "hello ".repeat(100) }] }));
    const c = countPromptTokens(
      body({
        messages: [{ role: "user", content: "hello" }],
        tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
      }),
    );
    // "hello" then 99 × " hello": one o200k token each.
    assert.ok(b >= a + 99 && c > a, `${a} ${b} ${c}`);
    assert.equal(a, countPromptTokens(body({ messages: [{ role: "user", content: "hello" }] })));
  });

  it("finds nullable or untyped nodes in tool schemas", () => {
    const tools = (parameters: unknown) => [{ name: "f", parameters }];
    assert.equal(hasNullableOrUntypedSchema(tools({ type: "object", properties: { a: { type: "string" } } })), false);
    assert.equal(
      hasNullableOrUntypedSchema(tools({ type: "object", properties: { a: { type: ["string", "null"] } } })),
      true,
    );
    assert.equal(
      hasNullableOrUntypedSchema(tools({ type: "object", properties: { a: { description: "no type" } } })),
      true,
    );
    assert.equal(
      hasNullableOrUntypedSchema(
        tools({ type: "object", properties: { a: { type: "array", items: { type: ["integer", "null"] } } } }),
      ),
      true,
    );
    assert.equal(
      hasNullableOrUntypedSchema(
        tools({ type: "object", properties: { a: { anyOf: [{ type: "string" }, { type: "null" }] } } }),
      ),
      false,
    );
  });

  it("compares versions numerically", () => {
    assert.equal(compareVersions("0.6.10", "0.6.9"), 1);
    assert.equal(compareVersions("0.6.2", "0.6.3"), -1);
    assert.equal(compareVersions("0.6.3", "0.6.3"), 0);
  });

  it("keeps natural lengths within range and stable per seed", () => {
    for (let seed = 0; seed < 50; seed++) {
      const n = naturalLength(seed, 20, 200);
      assert.ok(n >= 20 && n <= 200);
      assert.equal(n, naturalLength(seed, 20, 200));
    }
  });

  it("consumes the first scripted behaviour matching the request and draws from probabilities", () => {
    const script: ScriptedBehaviour[] = [
      { kind: "role_then_stall", when: { model: "gemma-4-26b" } },
      { kind: "error_after_content" },
    ];
    assert.deepEqual(takeScripted(script, { model: "gpt-oss-20b", hasTools: false }), { kind: "error_after_content" });
    assert.equal(takeScripted(script, { model: "gpt-oss-20b", hasTools: false }), undefined);
    assert.deepEqual(takeScripted(script, { model: "gemma-4-26b", hasTools: false }), { kind: "role_then_stall" });
    const probs = { probabilities: { error_before_content: 0.2, slow_first_token: 0.3 }, slowFirstTokenMs: 900 };
    assert.equal(drawBehaviour(probs, 0.1).kind, "error_before_content");
    assert.deepEqual(drawBehaviour(probs, 0.4), { kind: "slow_first_token", delayMs: 900 });
    assert.equal(drawBehaviour(probs, 0.6).kind, "normal");
  });
});
