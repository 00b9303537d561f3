import assert from "node:assert/strict";
import { dialects, repairToolSchemas } from "../../../src/dialects/index.js";
import { ctx } from "./sdk-streams.js";

describe("dialects index", () => {
  it("maps each route name to the dialect of that name", () => {
    for (const [name, d] of Object.entries(dialects)) assert.equal(d.name, name);
    assert.deepEqual(Object.keys(dialects).sort(), ["chat", "completions", "messages", "responses"]);
  });

  it("reads the stream flag of each dialect's body", () => {
    for (const d of Object.values(dialects)) {
      assert.equal(d.isStream({ stream: true }), true);
      assert.equal(d.isStream({ stream: "yes" }), false);
      assert.equal(d.isStream(null), false);
    }
  });

  it("delivers a repaired Pydantic-style nullable schema to the provider body in every dialect", () => {
    const params = { properties: { unit: { type: ["string", "null"] } } };
    const bodies = {
      chat: {
        model: "m",
        messages: [{ role: "user", content: "x" }],
        tools: [{ type: "function", function: { name: "f", parameters: params } }],
      },
      responses: { model: "m", input: "x", tools: [{ type: "function", name: "f", parameters: params }] },
      messages: {
        model: "m",
        max_tokens: 9,
        messages: [{ role: "user", content: "x" }],
        tools: [{ name: "f", input_schema: params }],
      },
    } as const;
    for (const [name, body] of Object.entries(bodies)) {
      const parsed: unknown = JSON.parse(repairToolSchemas(JSON.stringify(body)));
      const req = dialects[name as keyof typeof bodies].parse(parsed, ctx);
      const fn = (req.body.tools as any[])[0].function;
      assert.deepEqual(
        fn.parameters,
        { type: "object", properties: { unit: { type: "string", nullable: true } } },
        name,
      );
    }
  });
});
