import assert from "node:assert/strict";
import {
  MAX_REPAIR_BODY_BYTES,
  MAX_SCHEMA_DEPTH,
  needsRepair,
  repairToolSchemas,
} from "../../../../src/dialects/shared/tool-schema-repair.js";

const pydanticParams = {
  type: "object",
  properties: {
    city: { type: "string" },
    unit: { type: ["string", "null"], enum: ["c", "f", null] },
    when: { anyOf: [{ type: "string", format: "date" }, { type: "null" }] },
    tags: { items: { type: ["integer", "null"] } },
    meta: { additionalProperties: { description: "a value" } },
    address: { $ref: "#/$defs/Address" },
  },
  $defs: { Address: { properties: { zip: { type: ["string", "null"] } } } },
};

/** What the repair must turn `pydanticParams` into. */
const repairedParams = {
  type: "object",
  properties: {
    city: { type: "string" },
    unit: { type: "string", enum: ["c", "f", null], nullable: true },
    when: { anyOf: [{ type: "string", format: "date" }, { type: "null" }], type: "string" },
    tags: { items: { type: "integer", nullable: true }, type: "array" },
    meta: { additionalProperties: { description: "a value", type: "string" }, type: "object" },
    address: { $ref: "#/$defs/Address" },
  },
  $defs: { Address: { properties: { zip: { type: "string", nullable: true } }, type: "object" } },
};

describe("repairToolSchemas", () => {
  it("repairs chat tools[].function.parameters: nullable arrays, anyOf, items, additionalProperties, $defs", () => {
    const raw = JSON.stringify({
      model: "m",
      messages: [],
      tools: [{ type: "function", function: { name: "f", parameters: pydanticParams } }],
    });
    const out = JSON.parse(repairToolSchemas(raw));
    assert.deepEqual(out.tools[0].function.parameters, repairedParams);
    assert.equal(needsRepair(raw), true);
  });

  it("repairs Responses-flat tools[].parameters", () => {
    const raw = JSON.stringify({
      model: "m",
      input: "x",
      tools: [{ type: "function", name: "f", parameters: pydanticParams }],
    });
    assert.deepEqual(JSON.parse(repairToolSchemas(raw)).tools[0].parameters, repairedParams);
  });

  it("repairs Anthropic tools[].input_schema", () => {
    const raw = JSON.stringify({
      model: "m",
      max_tokens: 5,
      messages: [],
      tools: [{ name: "f", input_schema: pydanticParams }],
    });
    assert.deepEqual(JSON.parse(repairToolSchemas(raw)).tools[0].input_schema, repairedParams);
  });

  it("infers a union's type from its first concrete member and enum/const types from their values", () => {
    const params = {
      properties: {
        n: { oneOf: [{ type: "null" }, { type: ["number", "null"] }] },
        level: { enum: [1, 2, 3] },
        flag: { const: true },
        ratio: { enum: [0.5, 1] },
        free: { description: "anything" },
        ref: { $ref: "#/$defs/Num", description: "a referenced number" },
      },
      $defs: { Num: { type: "number" } },
    };
    const raw = JSON.stringify({ tools: [{ type: "function", function: { name: "f", parameters: params } }] });
    const p = JSON.parse(repairToolSchemas(raw)).tools[0].function.parameters;
    assert.equal(p.type, "object");
    assert.equal(p.properties.n.type, "number");
    assert.equal(p.properties.n.oneOf[1].nullable, true);
    assert.equal(p.properties.level.type, "integer");
    assert.equal(p.properties.flag.type, "boolean");
    assert.equal(p.properties.ratio.type, "number");
    assert.equal(p.properties.free.type, "string");
    assert.equal(p.properties.ref.type, "number");
  });

  it("keeps an explicit nullable, and types an empty property schema (old templates crash on `{}` too)", () => {
    const params = { type: "object", properties: { a: { type: ["string", "null"], nullable: false }, b: {} } };
    const raw = JSON.stringify({ tools: [{ type: "function", function: { name: "f", parameters: params } }] });
    const p = JSON.parse(repairToolSchemas(raw)).tools[0].function.parameters;
    assert.deepEqual(p.properties.a, { type: "string", nullable: false });
    assert.deepEqual(p.properties.b, { type: "string" });
  });

  it("returns the same string when nothing needs repair", () => {
    const raw = `{"model":"m" , "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string"}}}}}]}`;
    assert.equal(repairToolSchemas(raw), raw);
    assert.equal(needsRepair(raw), false);
    const noTools = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`;
    assert.equal(repairToolSchemas(noTools), noTools);
  });

  it("rewrites only the tools member, leaving every other byte of the body as sent", () => {
    const prefix = `{ "model" : "m",\n  "messages": [{"role":"user","content":"say \\u00e9 1.0 and 12345678901234567890"}], "temperature": 1.0,\n  "tools": `;
    const suffix = `,\n  "seed": 9007199254740993 }`;
    const raw =
      prefix + JSON.stringify([{ type: "function", function: { name: "f", parameters: { properties: {} } } }]) + suffix;
    const out = repairToolSchemas(raw);
    assert.notEqual(out, raw);
    assert.ok(out.startsWith(prefix));
    assert.ok(out.endsWith(suffix));
    assert.deepEqual(JSON.parse(out.slice(prefix.length, -suffix.length)), [
      { type: "function", function: { name: "f", parameters: { properties: {}, type: "object" } } },
    ]);
  });

  it("leaves the body untouched when the tools section holds a number that a double cannot carry exactly", () => {
    const raw = `{"tools":[{"type":"function","function":{"name":"f","parameters":{"properties":{"id":{"type":["integer","null"],"maximum":9007199254740993}}}}}]}`;
    assert.equal(repairToolSchemas(raw), raw);
    const exact = raw.replace("9007199254740993", "1.5e300");
    assert.match(repairToolSchemas(exact), /"maximum":1\.5e\+300/);
  });

  it("uses the last tools member when the key is duplicated, as JSON.parse does", () => {
    const raw = `{"tools":[],"tools":[{"name":"f","input_schema":{"properties":{}}}]}`;
    const out = JSON.parse(repairToolSchemas(raw));
    assert.equal(out.tools[0].input_schema.type, "object");
  });

  it("returns malformed or non-object bodies untouched", () => {
    const bad = [
      `{"tools":[{"type":"function","function":{"name":"f","parameters":{"properties":{}}}}]`,
      `{"tools":[{"type":"function","function":{"name":"f","parameters":{"properties":{}}}}], "x": }`,
      `[{"tools":[]}]`,
      `{"tools": "nope"}`,
      `{"tools":[{"function":{"parameters":{"properties":{}}}}]} trailing`,
      ``,
    ];
    for (const raw of bad) assert.equal(repairToolSchemas(raw), raw, raw);
  });

  it("stops descending at the depth bound", () => {
    let deep: Record<string, unknown> = { description: "leaf" };
    for (let i = 0; i < MAX_SCHEMA_DEPTH + 10; i++) deep = { type: "object", properties: { c: deep } };
    const raw = JSON.stringify({ tools: [{ name: "f", input_schema: deep }] });
    assert.equal(repairToolSchemas(raw), raw); // the only broken node is beyond the bound

    let shallow: Record<string, unknown> = { description: "leaf" };
    for (let i = 0; i < 10; i++) shallow = { type: "object", properties: { c: shallow } };
    assert.equal(needsRepair(JSON.stringify({ tools: [{ name: "f", input_schema: shallow }] })), true);
  });

  it("skips bodies over the size bound", () => {
    const tools = JSON.stringify([{ name: "f", input_schema: { properties: {} } }]);
    const pad = "x".repeat(MAX_REPAIR_BODY_BYTES);
    const raw = `{"messages":[{"role":"user","content":"${pad}"}],"tools":${tools}}`;
    assert.equal(repairToolSchemas(raw), raw);
  });
});
