/**
 * Tool-schema repair, applied once to the raw request body before JSON parsing, for all three tool homes:
 * chat `tools[].function.parameters`, Responses-flat `tools[].parameters` and Anthropic `tools[].input_schema`.
 *
 * Why: Gemma-style chat templates render `{{ value['type'] | upper }}` for each tool parameter. A schema node
 * whose `type` is missing (enum-only or anyOf properties) or not a string (Pydantic's nullable idiom
 * `"type": ["string","null"]`) makes the template throw, and the consumer sees a 500 (42 errors in 42 s in
 * production on older provider builds). Semantics follow the Go coordinator's api/toolschema.go (itself a port
 * of the Swift provider's ToolSchemaNormalization), extended with `$defs`/`definitions`, local `$ref`
 * resolution and enum/const typing.
 *
 * Guarantees:
 * - A body that needs no repair is returned as the same string instance (byte-for-byte identical).
 * - Only the text of the top-level `tools` member is rewritten; every other byte is left as sent.
 * - Any parse problem returns the input untouched (downstream validation reports it).
 * - Bodies over {@link MAX_REPAIR_BODY_BYTES} are skipped; recursion stops at {@link MAX_SCHEMA_DEPTH}.
 * - Numbers: the tools text is re-serialized with JSON.stringify, which is exact for numbers of at most 15
 *   significant digits. If the tools section holds any number with more (e.g. an integer beyond 2^53), the
 *   body is left untouched rather than risk changing a value.
 */
import { topLevelMemberSpan } from "./json-span.js";
import { utf8ByteLength } from "./prompt-estimate.js";

/** Bodies larger than this (UTF-8 bytes) are passed through without repair. */
export const MAX_REPAIR_BODY_BYTES = 4 * 1024 * 1024;
/** Schema nesting deeper than this is left as is. */
export const MAX_SCHEMA_DEPTH = 64;

type Node = Record<string, unknown>;

const UNION_KEYS = ["anyOf", "oneOf", "allOf"] as const;
const SCHEMA_MARKERS = ["properties", "items", "additionalProperties", "enum", "const", "description", ...UNION_KEYS];

function isNode(v: unknown): v is Node {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A representative type for a node with none: structure first, then union members, enum/const, `$ref`. */
function inferType(n: Node, root: Node): string {
  if ("properties" in n || "additionalProperties" in n) return "object";
  if ("items" in n) return "array";
  for (const key of UNION_KEYS) {
    const members = n[key];
    if (!Array.isArray(members)) continue;
    for (const m of members) {
      if (isNode(m) && typeof m.type === "string" && m.type !== "null") return m.type;
    }
  }
  const values = Array.isArray(n.enum) ? n.enum : "const" in n ? [n.const] : undefined;
  if (values !== undefined && values.length > 0) {
    if (values.every((v) => typeof v === "boolean")) return "boolean";
    if (values.every((v) => Number.isInteger(v))) return "integer";
    if (values.every((v) => typeof v === "number")) return "number";
  }
  if (typeof n.$ref === "string") {
    const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(n.$ref);
    const target = m ? (root[m[1]!] as Node | undefined)?.[m[2]!] : undefined;
    if (isNode(target) && typeof target.type === "string") return target.type;
    return "object"; // referenced definitions are overwhelmingly object models
  }
  return "string";
}

/** Repairs one schema node in place (children first, so unions see collapsed member types). */
function repairNode(v: unknown, root: Node, depth: number, positional = false): boolean {
  if (depth > MAX_SCHEMA_DEPTH) return false;
  if (Array.isArray(v)) return v.reduce<boolean>((ch, x) => repairNode(x, root, depth + 1) || ch, false);
  if (!isNode(v)) return false;
  let changed = false;
  // A property's or an item's value is a schema by position, even an empty `{}` (which old chat templates
  // crashed on just like a nullable type); $defs entries are only typed when they look like schemas.
  for (const key of ["properties", "$defs", "definitions"]) {
    const map = v[key];
    if (isNode(map))
      for (const child of Object.values(map))
        changed = repairNode(child, root, depth + 1, key === "properties") || changed;
  }
  if ("items" in v) changed = repairNode(v.items, root, depth + 1, true) || changed;
  // additionalProperties may itself be a schema; a bare true/false is left alone.
  if (isNode(v.additionalProperties)) changed = repairNode(v.additionalProperties, root, depth + 1, true) || changed;
  for (const key of UNION_KEYS) if (Array.isArray(v[key])) changed = repairNode(v[key], root, depth) || changed;

  if ("type" in v && typeof v.type !== "string") {
    const members = Array.isArray(v.type) ? v.type.filter((m): m is string => typeof m === "string") : [];
    const concrete = members.find((m) => m !== "null");
    // Keep nullability losslessly via the standard `nullable` key (never clobber an explicit one).
    if (concrete !== undefined && members.includes("null") && !("nullable" in v)) v.nullable = true;
    v.type = concrete ?? members[0] ?? inferType(v, root);
    changed = true;
  } else if (!("type" in v) && ((positional && !("$ref" in v)) || SCHEMA_MARKERS.some((k) => k in v))) {
    v.type = inferType(v, root);
    changed = true;
  }
  return changed;
}

/** Repairs the schema homes of one tool entry. */
function repairToolEntry(tool: unknown): boolean {
  if (!isNode(tool)) return false;
  let changed = false;
  const fn = tool.function;
  if (isNode(fn)) {
    // An object `function` wrapper claims the entry (chat shape): a stray top-level `parameters` is not repaired.
    if (isNode(fn.parameters)) changed = repairNode(fn.parameters, fn.parameters, 0) || changed;
  } else if (isNode(tool.parameters)) {
    changed = repairNode(tool.parameters, tool.parameters, 0) || changed; // Responses flat shape
  }
  if (isNode(tool.input_schema)) changed = repairNode(tool.input_schema, tool.input_schema, 0) || changed; // Anthropic
  return changed;
}

/** True when some number token in `json` has more than 15 significant digits (not exact through a double). */
function hasImpreciseNumber(json: string): boolean {
  const re = /"(?:[^"\\]|\\.)*"|-?(\d+)(?:\.(\d+))?(?:[eE][+-]?\d+)?/g;
  for (let m = re.exec(json); m !== null; m = re.exec(json)) {
    if (m[1] === undefined) continue; // a string
    const digits = (m[1] + (m[2] ?? "")).replace(/^0+/, "").replace(/0+$/, "");
    if (digits.length > 15) return true;
  }
  return false;
}

interface Plan {
  start: number;
  end: number;
  tools: unknown[];
  changed: boolean;
}

function plan(raw: string): Plan | undefined {
  if (raw.length > MAX_REPAIR_BODY_BYTES) return undefined;
  if (raw.length > MAX_REPAIR_BODY_BYTES / 3 && utf8ByteLength(raw) > MAX_REPAIR_BODY_BYTES) return undefined;
  if (!raw.includes('"tools"')) return undefined; // cheap gate: no tools, nothing to repair
  const span = topLevelMemberSpan(raw, "tools");
  if (span === null || span === undefined) return undefined;
  const text = raw.slice(span.start, span.end);
  let tools: unknown;
  try {
    tools = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(tools)) return undefined;
  const changed = tools.reduce<boolean>((ch, t) => repairToolEntry(t) || ch, false);
  return { start: span.start, end: span.end, tools, changed: changed && !hasImpreciseNumber(text) };
}

/** Whether {@link repairToolSchemas} would change this body. */
export function needsRepair(raw: string): boolean {
  return plan(raw)?.changed === true;
}

/** Returns `raw` with every tool schema node given a string `type` (see the module notes for guarantees). */
export function repairToolSchemas(raw: string): string {
  const p = plan(raw);
  if (p === undefined || !p.changed) return raw;
  try {
    JSON.parse(raw); // the whole document must be valid, or we leave it for downstream to reject as sent
  } catch {
    return raw;
  }
  return raw.slice(0, p.start) + JSON.stringify(p.tools) + raw.slice(p.end);
}
