/**
 * Request bodies as data for the fuzz suite: a JSON tree with what `JSON.stringify` cannot write ({@link RawJson}
 * text written verbatim, such as `NaN`, `1e400`, `-0`, `01`; duplicate object keys under {@link DUPLICATES};
 * {@link LongString}s printed short in counterexamples), the tree and byte operations that mutate one, and
 * {@link renderBody}, which applies them. Keeping the operations as data makes every case printable and
 * shrinkable by fast-check; the arbitraries that generate them are in json-mutation.ts.
 */
import fc from "fast-check";

/** Text written into the document as is (it may be invalid JSON on purpose). */
export class RawJson {
  constructor(readonly text: string) {}
  [fc.toStringMethod](): string {
    return `raw(${JSON.stringify(this.text)})`;
  }
}

/** A JSON string of `unit` repeated `count` times, printed short in counterexamples. */
export class LongString {
  constructor(
    readonly unit: string,
    readonly count: number,
  ) {}
  get value(): string {
    return this.unit.repeat(this.count);
  }
  [fc.toStringMethod](): string {
    return `${JSON.stringify(this.unit)}.repeat(${this.count})`;
  }
}

/** Extra members of an object written after its own keys, so a key can appear twice. */
export const DUPLICATES: unique symbol = Symbol("duplicate keys");

export type JsonTree = null | boolean | number | string | RawJson | LongString | JsonTree[] | JsonObjectTree;
export interface JsonObjectTree {
  [key: string]: JsonTree;
  [DUPLICATES]?: [string, JsonTree][];
}

/** Writes a tree as JSON text (non-finite numbers become `null`, as JSON.stringify writes them). */
export function writeJson(t: JsonTree): string {
  if (t instanceof RawJson) return t.text;
  if (t instanceof LongString) return JSON.stringify(t.value);
  if (t === null || typeof t === "boolean" || typeof t === "number") return JSON.stringify(t) ?? "null";
  // JSON.stringify escapes lone surrogates (\ud800), so the text stays well-formed UTF-8 on the wire.
  if (typeof t === "string") return JSON.stringify(t);
  if (Array.isArray(t)) return `[${t.map(writeJson).join(",")}]`;
  const parts = Object.entries(t).map(([k, v]) => `${JSON.stringify(k)}:${writeJson(v)}`);
  for (const [k, v] of t[DUPLICATES] ?? []) parts.push(`${JSON.stringify(k)}:${writeJson(v)}`);
  return `{${parts.join(",")}}`;
}

/** Sets an own member, even one named `__proto__` (plain assignment would set the prototype instead). */
export function setMember(o: JsonObjectTree, key: string, value: JsonTree): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

function clone(t: JsonTree): JsonTree {
  if (!isContainer(t)) return t;
  if (Array.isArray(t)) return t.map(clone);
  const o: JsonObjectTree = {};
  for (const [k, v] of Object.entries(t)) setMember(o, k, clone(v));
  if (t[DUPLICATES]) o[DUPLICATES] = t[DUPLICATES].map(([k, v]) => [k, clone(v)]);
  return o;
}

/** A place in a tree: its value and how to replace or remove it (the root has no `remove`). */
interface Slot {
  value: JsonTree;
  set(v: JsonTree): void;
  remove?(): void;
  /** For a member of an object: write it again (a duplicate key) with `v`. */
  duplicateKey?(v: JsonTree): void;
  /** For an element of an array: insert `n` copies after it. */
  repeat?(n: number): void;
}

function isContainer(v: JsonTree): v is JsonTree[] | JsonObjectTree {
  return typeof v === "object" && v !== null && !(v instanceof RawJson) && !(v instanceof LongString);
}

/** Values in the tree, the root included (iterative: blown-up arrays hold 10,001 elements). */
function countNodes(root: JsonTree): number {
  let n = 0;
  const stack: JsonTree[] = [root];
  while (stack.length > 0) {
    const v = stack.pop()!;
    n++;
    if (!isContainer(v)) continue;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push(child);
  }
  return n;
}

/** The slot of the `index`-th value in pre-order (the root is 0). One walk, closures only for the slot found. */
function slotAt(root: { v: JsonTree }, index: number): Slot {
  let seen = 0;
  const find = (
    value: JsonTree,
  ): { parent: JsonTree[] | JsonObjectTree; key: number | string } | "self" | undefined => {
    if (seen++ === index) return "self";
    if (!isContainer(value)) return undefined;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const r = find(value[i]!);
        if (r === "self") return { parent: value, key: i };
        if (r) return r;
      }
      return undefined;
    }
    for (const k of Object.keys(value)) {
      const r = find(value[k]!);
      if (r === "self") return { parent: value, key: k };
      if (r) return r;
    }
    return undefined;
  };
  const at = find(root.v);
  if (at === undefined || at === "self") return { value: root.v, set: (v) => (root.v = v) };
  const { parent, key } = at;
  if (Array.isArray(parent)) {
    const i = key as number;
    const child = parent[i]!;
    return {
      value: child,
      set: (v) => (parent[i] = v),
      remove: () => parent.splice(i, 1),
      repeat: (n) => parent.splice(i + 1, 0, ...Array.from({ length: n }, () => clone(child))),
    };
  }
  const k = key as string;
  return {
    value: parent[k]!,
    set: (v) => setMember(parent, k, v),
    remove: () => delete parent[k],
    duplicateKey: (v) => (parent[DUPLICATES] ??= []).push([k, v]),
  };
}

/** Bytes one `repeat` operation may add at most. */
const MAX_REPEAT_BYTES = 2_000_000;

/** One change to the parsed document; `at` picks the slot (modulo the slot count, pre-order). */
export type TreeOp =
  | { op: "drop"; at: number }
  | { op: "replace"; at: number; value: JsonTree }
  | { op: "duplicateKey"; at: number; value: JsonTree }
  | { op: "repeat"; at: number; times: number }
  | { op: "nest"; at: number; depth: number; kind: "array" | "object" }
  | { op: "addKey"; at: number; key: string; value: JsonTree };

/** One change to the bytes on the wire; `at` is a position (modulo the length). */
export type ByteOp =
  | { op: "truncate"; at: number }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "flip"; at: number; bit: number }
  | { op: "prefix"; bytes: Uint8Array }
  | { op: "suffix"; bytes: Uint8Array };

/** A body case: what to start from, then the tree and byte operations. */
export type BodyCase =
  | { kind: "tree"; start: JsonTree; treeOps: TreeOp[]; byteOps: ByteOp[] }
  | { kind: "bytes"; bytes: Uint8Array };

/** Applies one tree operation in place. */
function applyTreeOp(root: { v: JsonTree }, op: TreeOp): void {
  const s = slotAt(root, op.at % countNodes(root.v));
  switch (op.op) {
    case "drop":
      // Dropping the root leaves an empty document.
      if (s.remove) s.remove();
      else root.v = new RawJson("");
      return;
    case "replace":
      s.set(clone(op.value));
      return;
    case "duplicateKey":
      if (s.duplicateKey) s.duplicateKey(clone(op.value));
      else if (s.repeat) s.repeat(1);
      return;
    case "repeat": {
      // Bodies stay under ~2 MB however the operations combine (a 1 MB string repeated 10,001 times would not).
      const unit = s.repeat ? s.value : Array.isArray(s.value) ? s.value[0] : undefined;
      if (unit === undefined) return;
      const times = Math.min(op.times, Math.floor(MAX_REPEAT_BYTES / Math.max(1, writeJson(unit).length)));
      if (s.repeat) s.repeat(times);
      else s.set([...(s.value as JsonTree[]), ...Array.from({ length: times }, () => clone(unit))]);
      return;
    }
    case "nest": {
      let v: JsonTree = s.value;
      for (let i = 0; i < op.depth; i++) v = op.kind === "array" ? [v] : { a: v };
      s.set(v);
      return;
    }
    case "addKey": {
      // Into the slot's value if it is an object, else into the root (if that is one).
      const target = isObjectTree(s.value) ? s.value : isObjectTree(root.v) ? root.v : undefined;
      if (target) setMember(target, op.key, clone(op.value));
      return;
    }
  }
}

function isObjectTree(v: JsonTree): v is JsonObjectTree {
  return (
    typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof RawJson) && !(v instanceof LongString)
  );
}

function applyByteOp(b: Buffer, op: ByteOp): Buffer {
  switch (op.op) {
    case "truncate":
      return b.subarray(0, b.length === 0 ? 0 : op.at % b.length);
    case "insert": {
      const at = b.length === 0 ? 0 : op.at % (b.length + 1);
      return Buffer.concat([b.subarray(0, at), op.bytes, b.subarray(at)]);
    }
    case "flip": {
      if (b.length === 0) return b;
      const c = Buffer.from(b);
      c[op.at % c.length]! ^= 1 << (op.bit % 8);
      return c;
    }
    case "prefix":
      return Buffer.concat([op.bytes, b]);
    case "suffix":
      return Buffer.concat([b, op.bytes]);
  }
}

/** The mutated document after the tree operations (before the byte operations). */
export function mutatedTree(c: Extract<BodyCase, { kind: "tree" }>): JsonTree {
  const root = { v: clone(c.start) };
  for (const op of c.treeOps) applyTreeOp(root, op);
  return root.v;
}

/** The bytes a case sends. */
export function renderBody(c: BodyCase): Buffer {
  if (c.kind === "bytes") return Buffer.from(c.bytes);
  return applyByteOps(Buffer.from(writeJson(mutatedTree(c)), "utf8"), c.byteOps);
}

/** Applies byte operations to any buffer (a JSON text, a protobuf encoding). */
export function applyByteOps(bytes: Buffer, ops: readonly ByteOp[]): Buffer {
  let b = bytes;
  for (const op of ops) b = applyByteOp(b, op);
  return b;
}
