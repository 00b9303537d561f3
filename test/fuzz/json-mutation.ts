/**
 * fast-check arbitraries of body mutations (json-tree.ts applies them): hostile numbers and strings, tree
 * operations (drop, duplicate, retype, nest, blow up, prototype keys), byte operations (truncation, invalid
 * UTF-8, bit flips, junk around the document), whole body cases built from valid documents, and content types.
 */
import fc from "fast-check";
import { LongString, RawJson, type BodyCase, type ByteOp, type JsonTree, type TreeOp } from "./json-tree.js";

const raw = (text: string) => new RawJson(text);

/** Numbers no honest client sends, including ones JSON cannot represent and numbers in strings. */
export const hostileNumber: fc.Arbitrary<JsonTree> = fc.oneof(
  fc.constantFrom<JsonTree>(
    0,
    -1,
    1,
    1.5,
    -0.5,
    2 ** 31 - 1,
    2 ** 31,
    -(2 ** 31),
    2 ** 32,
    2 ** 53,
    -(2 ** 53),
    1e308,
    -1e308,
    5e-324,
    1e21,
  ),
  fc.constantFrom<JsonTree>(
    raw("-0"),
    raw("9007199254740993"),
    raw("9223372036854775807"),
    raw("9223372036854775808"),
    raw("-9223372036854775809"),
    raw("18446744073709551616"),
    raw("1e309"),
    raw("-1e309"),
    raw("1e-400"),
    raw("123456789012345678901234567890"),
    raw("1E2"),
    raw("4.0"),
  ),
  // Not JSON at all: the parser must answer 400.
  fc.constantFrom<JsonTree>(
    raw("NaN"),
    raw("Infinity"),
    raw("-Infinity"),
    raw("0x10"),
    raw("01"),
    raw("1."),
    raw("+1"),
    raw(".5"),
    raw("1e"),
  ),
  fc.constantFrom<JsonTree>("1", "NaN", "Infinity", "-1", "1e400", " 1"),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/**
 * Strings of arbitrary code points, lone surrogates and controls included, from the ranges where parsers and
 * tokenizers differ. Built from code points rather than `fc.string({unit: "binary"})`, whose shrinker builds
 * a reverse map of all 1.1 M code points (a second of CPU and ~100 MB per arbitrary).
 */
const anyCodePoints: fc.Arbitrary<JsonTree> = fc
  .array(
    fc.oneof(
      fc.integer({ min: 0, max: 0x7f }),
      fc.integer({ min: 0x80, max: 0x7ff }),
      fc.integer({ min: 0xd800, max: 0xdfff }),
      fc.integer({ min: 0xfff0, max: 0xffff }),
      fc.integer({ min: 0x1f300, max: 0x1faff }),
      fc.integer({ min: 0, max: 0x10ffff }),
    ),
    { maxLength: 40 },
  )
  .map((cps) => String.fromCodePoint(...cps));

/** Strings no honest client sends: NUL, lone surrogates, bidi and line separators, long runs, injections. */
export const hostileString: fc.Arbitrary<JsonTree> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom<JsonTree>(
      "",
      "\u0000",
      "a\u0000b",
      "\ud800",
      "\udfff",
      "x\udc00y\ud800",
      "\ud83d\ude00",
      "\u202eevil",
      "\u2028\u2029",
      "\ufeff",
      "\r\n\r\n",
      "\\",
      '"',
      "%s%n%x",
      "<script>alert(1)</script>",
      "' OR 1=1 --",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the Log4Shell probe is a literal on purpose
      "${jndi:ldap://x/a}",
      "../../etc/passwd",
      "\u0085\u00ad\u007f",
      "null",
      "[]",
      "{}",
      "data:",
      "data:image/png;base64,!!!",
      "https://",
      "http://169.254.169.254/latest/meta-data/",
      "file:///etc/passwd",
      "sk-",
      "gpt-oss-20b\u0000",
      " gpt-oss-20b",
      "GPT-OSS-20B",
      "gpt-oss-20b/../qwen3-8b",
    ),
  },
  { weight: 3, arbitrary: anyCodePoints },
  // Long runs around the field and string limits (256 for user fields; 1 MB bodies stay cheap).
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom("x", "é", "\ud83d\ude00", "\u0000", "ab "),
        fc.constantFrom(256, 257, 4_096, 70_000, 1_000_000),
      )
      .map(([c, n]) => new LongString(c, n)),
  },
);

/** Any JSON value (small), or one of the hostile scalars. */
export const anyValue: fc.Arbitrary<JsonTree> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonTree> },
  { weight: 2, arbitrary: hostileNumber },
  { weight: 2, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.constantFrom<JsonTree>(null, true, false, [], {}, [null], [[]], [{}]) },
);

/** Keys worth adding to any object: prototype keys, near-miss field names, junk. */
const hostileKey = fc.oneof(
  fc.constantFrom(
    "__proto__",
    "constructor",
    "prototype",
    "toString",
    "hasOwnProperty",
    "valueOf",
    "then",
    "x_raw_prompt",
    "stream",
    "n",
    "model",
    "messages",
    "max_tokens",
    "tools",
    "user",
    "",
    "\u0000",
  ),
  fc.string({ maxLength: 12 }),
);

const at = fc.nat();

/** One tree operation. */
export const treeOp: fc.Arbitrary<TreeOp> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant("drop" as const), at }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant("replace" as const), at, value: anyValue }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("duplicateKey" as const), at, value: anyValue }) },
  // Blow-ups around the limits: 128 tools, 100 images, 10,000 messages.
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("repeat" as const), at, times: fc.constantFrom(1, 2, 5, 64, 129, 10_001) }),
  },
  // Nesting up to and past MAX_JSON_DEPTH (64).
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("nest" as const),
      at,
      depth: fc.integer({ min: 1, max: 70 }),
      kind: fc.constantFrom("array" as const, "object" as const),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("addKey" as const), at, key: hostileKey, value: anyValue }) },
);

const someBytes = fc.oneof(
  fc.constantFrom(
    Uint8Array.of(0xff),
    Uint8Array.of(0xc0, 0x80),
    Uint8Array.of(0x80),
    Uint8Array.of(0xed, 0xa0, 0x80), // an encoded surrogate (invalid UTF-8)
    Uint8Array.of(0xef, 0xbb, 0xbf), // a BOM
    Uint8Array.of(0x00),
    Uint8Array.from(Buffer.from("}")),
    Uint8Array.from(Buffer.from(",")),
    Uint8Array.from(Buffer.from(" \n\t")),
    Uint8Array.from(Buffer.from('{"a":1}')),
  ),
  fc.uint8Array({ minLength: 1, maxLength: 16 }),
);

/** One byte operation. */
export const byteOp: fc.Arbitrary<ByteOp> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant("truncate" as const), at }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("insert" as const), at, bytes: someBytes }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("flip" as const), at, bit: fc.nat({ max: 7 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("prefix" as const), bytes: someBytes }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("suffix" as const), bytes: someBytes }) },
);

/**
 * Body cases built from valid documents: a quarter sent as is, the rest mutated in the tree, on the wire, or
 * replaced by random JSON or random bytes.
 */
export function bodyCase(valid: fc.Arbitrary<JsonTree>): fc.Arbitrary<BodyCase> {
  const noTreeOps = fc.constant<TreeOp[]>([]);
  const noByteOps = fc.constant<ByteOp[]>([]);
  const tree = (treeOps: fc.Arbitrary<TreeOp[]>, byteOps: fc.Arbitrary<ByteOp[]>) =>
    fc.record({ kind: fc.constant("tree" as const), start: valid, treeOps, byteOps });
  return fc.oneof(
    { weight: 4, arbitrary: tree(noTreeOps, noByteOps) },
    { weight: 8, arbitrary: tree(fc.array(treeOp, { minLength: 1, maxLength: 3 }), noByteOps) },
    {
      weight: 2,
      arbitrary: tree(fc.array(treeOp, { maxLength: 2 }), fc.array(byteOp, { minLength: 1, maxLength: 2 })),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant("tree" as const),
        start: fc.jsonValue({ maxDepth: 4 }) as fc.Arbitrary<JsonTree>,
        treeOps: noTreeOps,
        byteOps: noByteOps,
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant("bytes" as const), bytes: fc.uint8Array({ maxLength: 256 }) }),
    },
  );
}

/** Content types a body may be sent with (JSON most of the time; absent, wrong or odd otherwise). */
export const contentType: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 12, arbitrary: fc.constant("application/json") },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      undefined,
      "application/json; charset=utf-8",
      "APPLICATION/JSON",
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/json; charset=utf-16",
      "application/xml",
      "application/proto",
      "",
      "*/*",
    ),
  },
);

/** Whether a content type announces JSON (a 415 is a fair answer to anything else). */
export function isJsonContentType(ct: string | undefined): boolean {
  return ct !== undefined && /^application\/json\s*(;\s*charset=utf-8\s*)?$/i.test(ct);
}

/** The first `n` characters of a body, for failure messages. */
export function preview(b: Buffer, n = 400): string {
  const s = b.toString("utf8");
  return s.length > n ? `${s.slice(0, n)}… (${b.length} bytes)` : s;
}
