/**
 * Provider stream frames for the fuzz suite: valid ProviderMessage encodings (protobuf-es `create` +
 * `toBinary`) carrying hostile but well-typed values (huge counts, NaN and infinite doubles, NUL and control
 * characters, over-long ids, request ids nobody owns), and the same encodings mutated on the wire (bit flips,
 * truncation, inserted bytes, unknown fields) or replaced by random bytes. A frame's request id is a slot filled
 * in when it is sent, so one generated script can answer whichever request reaches the provider.
 */
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import fc from "fast-check";
import { ProviderMessageSchema } from "../../gen/coordinator/provider/v1/provider_pb.js";
import { byteOp } from "./json-mutation.js";
import { applyByteOps, type ByteOp } from "./json-tree.js";

type Init = MessageInitShape<typeof ProviderMessageSchema>;

/** Where a per-request frame's id comes from: the request being served, or junk nobody owns. */
export type RequestIdRef = { kind: "served" } | { kind: "literal"; value: string };

/** A frame as generated: the message (ids still to fill in), then optional wire mutations. */
export interface FrameCase {
  message: FrameMessage;
  wire: { kind: "as-is" } | { kind: "mutated"; ops: ByteOp[] } | { kind: "random"; bytes: Uint8Array };
}

/** A ProviderMessage init whose request ids may be {@link RequestIdRef}s. */
export type FrameMessage =
  | { case: "register"; value: Extract<NonNullable<Init["msg"]>, { case: "register" }>["value"] }
  | { case: "heartbeat"; value: Extract<NonNullable<Init["msg"]>, { case: "heartbeat" }>["value"] }
  | { case: "inferenceAccepted"; id: RequestIdRef }
  | { case: "inferenceChunk"; id: RequestIdRef; deltas: unknown[] }
  | {
      case: "inferenceComplete";
      id: RequestIdRef;
      finishReason: number;
      usage: { promptTokens: number; completionTokens: number; reasoningTokens: number } | undefined;
    }
  | { case: "inferenceError"; id: RequestIdRef; statusCode: number; message: string; reason: number }
  | { case: "modelLoadStatus"; value: Extract<NonNullable<Init["msg"]>, { case: "modelLoadStatus" }>["value"] }
  | { case: "challengeResponse"; nonce: Uint8Array; signature: Uint8Array }
  | { case: "empty" };

const u32 = fc.oneof(
  { weight: 3, arbitrary: fc.nat({ max: 64 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(0, 1, 255, 256, 1024, 1025, 4_096, 4_097, 16_777_216, 16_777_217, 2 ** 31, 2 ** 32 - 1),
  },
  { weight: 1, arbitrary: fc.nat() },
);
const u64 = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 20n }),
  fc.constantFrom(0n, 2n ** 41n, 2n ** 41n + 1n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n),
);
const enumValue = fc.oneof(
  { weight: 4, arbitrary: fc.nat({ max: 9 }) },
  { weight: 1, arbitrary: fc.constantFrom(-1, 99, 2 ** 31 - 1, -(2 ** 31)) },
);
const double = fc.oneof(
  fc.double(),
  fc.constantFrom(0, -0, 0.5, 1, 1e308, -1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 5e-324),
);
/** Strings a protobuf string field can hold (well-formed UTF-16; invalid UTF-8 comes from wire mutations). */
const str = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.constantFrom(
      "",
      "gpt-oss-20b",
      "assistant",
      "hello",
      "a\u0000b",
      "\u202e",
      "\r\n",
      "<script>",
      "\u0085",
      "x".repeat(65),
      "x".repeat(129),
      "x".repeat(257),
      "x".repeat(600),
      "m/../n",
    ),
  },
  { weight: 8, arbitrary: fc.string({ maxLength: 24 }) },
  // Rare: megabyte strings make megabyte frames, which cost both sides far more than the rest of a case.
  { weight: 1, arbitrary: fc.constantFrom(70_000, 1_000_000).map((n) => "é".repeat(n)) },
);
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 80 }),
  fc.constant(new Uint8Array(32)),
  fc.constant(new Uint8Array(64)),
);

const requestId = (served: boolean): fc.Arbitrary<RequestIdRef> => {
  const junk = fc.oneof(
    {
      weight: 2,
      arbitrary: fc
        .constantFrom("req_unknown", "", "x".repeat(65), "req_\u0000", "../../")
        .map((value): RequestIdRef => ({ kind: "literal", value })),
    },
    { weight: 1, arbitrary: str.map((value): RequestIdRef => ({ kind: "literal", value })) },
  );
  return served
    ? fc.oneof({ weight: 6, arbitrary: fc.constant<RequestIdRef>({ kind: "served" }) }, { weight: 3, arbitrary: junk })
    : junk;
};

const delta = fc.oneof(
  { weight: 4, arbitrary: str.map((value) => ({ delta: { case: "content" as const, value } })) },
  { weight: 1, arbitrary: str.map((value) => ({ delta: { case: "reasoning" as const, value } })) },
  { weight: 1, arbitrary: str.map((value) => ({ delta: { case: "role" as const, value } })) },
  {
    weight: 2,
    arbitrary: fc
      .record({ index: u32, id: str, name: str, arguments: str })
      .map((value) => ({ delta: { case: "toolCall" as const, value } })),
  },
  { weight: 1, arbitrary: fc.constant({ delta: { case: undefined } }) },
);

const modelInfo = fc.record(
  {
    id: str,
    sizeBytes: u64,
    quantization: str,
    contextLength: u32,
    isVision: fc.boolean(),
    templateRenderOk: fc.option(fc.boolean(), { nil: undefined }),
  },
  { requiredKeys: ["id"] },
);
const slot = fc.record({
  model: str,
  state: enumValue,
  numRunning: u32,
  numWaiting: u32,
  maxConcurrency: u32,
  activeTokenBudgetUsed: u64,
  activeTokenBudgetMax: u64,
  kvBytesPerToken: u64,
  observedDecodeTps: double,
  observedPrefillTps: double,
  modelLoadTimeMs: u32,
});

/** One message, hostile in its values; `served` allows frames naming the request being served. */
export function frameMessage(o: { served: boolean; authToken: string }): fc.Arbitrary<FrameMessage> {
  return fc.oneof(
    {
      weight: 3,
      arbitrary: fc
        .record(
          {
            status: enumValue,
            system: fc.record({ memoryPressure: double, cpuUsage: double, thermalState: enumValue }),
            capacity: fc.record({
              totalMemoryGb: double,
              freeForLoadGb: fc.option(double, { nil: undefined }),
              slots: fc.array(slot, { maxLength: 3 }),
            }),
            warmModels: fc.array(str, { maxLength: 4 }),
          },
          { requiredKeys: [] },
        )
        .map((value) => ({ case: "heartbeat" as const, value })),
    },
    { weight: 2, arbitrary: requestId(o.served).map((id) => ({ case: "inferenceAccepted" as const, id })) },
    {
      weight: 4,
      arbitrary: fc
        .record({
          id: requestId(o.served),
          deltas: fc.oneof(
            { weight: 6, arbitrary: fc.array(delta, { maxLength: 6 }) },
            {
              weight: 1,
              arbitrary: fc
                .constantFrom(1_024, 1_025)
                .map((n) => Array.from({ length: n }, () => ({ delta: { case: "content" as const, value: "x" } }))),
            },
          ),
        })
        .map((v) => ({ case: "inferenceChunk" as const, ...v })),
    },
    {
      weight: 3,
      arbitrary: fc
        .record({
          id: requestId(o.served),
          finishReason: enumValue,
          usage: fc.option(fc.record({ promptTokens: u32, completionTokens: u32, reasoningTokens: u32 }), {
            nil: undefined,
          }),
        })
        .map((v) => ({ case: "inferenceComplete" as const, ...v })),
    },
    {
      weight: 2,
      arbitrary: fc
        .record({ id: requestId(o.served), statusCode: u32, message: str, reason: enumValue })
        .map((v) => ({ case: "inferenceError" as const, ...v })),
    },
    {
      weight: 1,
      arbitrary: fc
        .record({ model: str, state: enumValue, error: str, loadTimeMs: u32 })
        .map((value) => ({ case: "modelLoadStatus" as const, value })),
    },
    {
      weight: 1,
      arbitrary: fc
        .record({ nonce: bytes, signature: bytes })
        .map((v) => ({ case: "challengeResponse" as const, ...v })),
    },
    {
      weight: 1,
      arbitrary: fc
        .record({
          authToken: fc.oneof(fc.constant(o.authToken), str),
          serial: fc.oneof(fc.constantFrom("FUZZ-REG-1", "a", ""), str),
          version: str,
          models: fc.array(modelInfo, { maxLength: 3 }),
          maxModelSlots: u32,
          decodeTps: double,
          publicKey: bytes,
        })
        .map((value) => ({ case: "register" as const, value })),
    },
    { weight: 1, arbitrary: fc.constant({ case: "empty" as const }) },
  );
}

/** A frame: the message as encoded (most), its encoding mutated, or random bytes. */
export function frameCase(o: { served: boolean; authToken: string }): fc.Arbitrary<FrameCase> {
  return fc.record({
    message: frameMessage(o),
    wire: fc.oneof(
      { weight: 5, arbitrary: fc.constant({ kind: "as-is" as const }) },
      {
        weight: 3,
        arbitrary: fc.array(byteOp, { minLength: 1, maxLength: 3 }).map((ops) => ({ kind: "mutated" as const, ops })),
      },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => ({ kind: "random" as const, bytes: b })) },
    ),
  });
}

/** The ProviderMessage init of a frame, request ids filled in. */
export function frameInit(m: FrameMessage, servedId: string): Init {
  const id = (r: RequestIdRef) => (r.kind === "served" ? servedId : r.value);
  switch (m.case) {
    case "register":
    case "heartbeat":
    case "modelLoadStatus":
      return { msg: { case: m.case, value: m.value } } as Init;
    case "inferenceAccepted":
      return { msg: { case: "inferenceAccepted", value: { requestId: id(m.id) } } };
    case "inferenceChunk":
      return { msg: { case: "inferenceChunk", value: { requestId: id(m.id), deltas: m.deltas as never } } };
    case "inferenceComplete":
      return {
        msg: {
          case: "inferenceComplete",
          value: { requestId: id(m.id), finishReason: m.finishReason, ...(m.usage ? { usage: m.usage } : {}) },
        },
      };
    case "inferenceError":
      return {
        msg: {
          case: "inferenceError",
          value: { requestId: id(m.id), statusCode: m.statusCode, message: m.message, reason: m.reason },
        },
      };
    case "challengeResponse":
      return { msg: { case: "challengeResponse", value: { nonce: m.nonce, signature: m.signature } } };
    case "empty":
      return {};
  }
}

/** The bytes of a frame on the wire. */
export function frameBytes(f: FrameCase, servedId: string): Uint8Array {
  if (f.wire.kind === "random") return f.wire.bytes;
  const encoded = Buffer.from(
    toBinary(ProviderMessageSchema, create(ProviderMessageSchema, frameInit(f.message, servedId))),
  );
  return f.wire.kind === "as-is" ? encoded : applyByteOps(encoded, f.wire.ops);
}

/** A short description of a frame for failure messages (without megabyte strings). */
export function describeFrame(f: FrameCase): string {
  const wire =
    f.wire.kind === "as-is"
      ? ""
      : f.wire.kind === "random"
        ? ` random ${f.wire.bytes.length} bytes`
        : ` mutated ${JSON.stringify(f.wire.ops.map((o) => o.op))}`;
  return `${f.message.case}${wire}`;
}
