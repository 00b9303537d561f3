import assert from "node:assert/strict";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { ProviderMessageSchema, type FinishReason } from "../../../gen/coordinator/provider/v1/provider_pb.js";
import { decodeProviderMessage } from "../../../src/protocol/provider-message-decoder.js";

type Init = MessageInitShape<typeof ProviderMessageSchema>;

const encode = (init: Init) => Buffer.from(toBinary(ProviderMessageSchema, create(ProviderMessageSchema, init)));
/** The fast decoder must return exactly what protobuf-es returns, for every input. */
function same(bytes: Uint8Array, label: string): void {
  assert.deepStrictEqual(decodeProviderMessage(bytes), fromBinary(ProviderMessageSchema, bytes), label);
}

describe("decodeProviderMessage (fast path for per-request provider frames)", () => {
  it("decodes accepted, chunk and complete frames exactly as fromBinary does", () => {
    const cases: [string, Init][] = [
      ["accepted", { msg: { case: "inferenceAccepted", value: { requestId: "req_1" } } }],
      ["accepted, empty id", { msg: { case: "inferenceAccepted", value: {} } }],
      ["chunk, no deltas", { msg: { case: "inferenceChunk", value: { requestId: "req_2" } } }],
      [
        "chunk",
        {
          msg: {
            case: "inferenceChunk",
            value: {
              requestId: "req_3",
              deltas: [
                { delta: { case: "role", value: "assistant" } },
                { delta: { case: "content", value: "Héllo, wörld 🌍 " } },
                { delta: { case: "reasoning", value: "thinking…" } },
                { delta: { case: "content", value: "" } },
                { delta: { case: undefined } },
              ],
            },
          },
        },
      ],
      [
        "complete with usage",
        {
          msg: {
            case: "inferenceComplete",
            value: {
              requestId: "req_4",
              finishReason: 2,
              usage: { promptTokens: 12, completionTokens: 4_294_967_295, reasoningTokens: 3 },
            },
          },
        },
      ],
      ["complete, no usage", { msg: { case: "inferenceComplete", value: { requestId: "req_5", finishReason: 1 } } }],
      [
        "complete, unknown enum value",
        {
          msg: {
            case: "inferenceComplete",
            value: { requestId: "req_6", finishReason: 99 as FinishReason, usage: {} },
          },
        },
      ],
      ["empty message", {}],
    ];
    for (const [label, init] of cases) same(encode(init), label);
  });

  it("falls back to fromBinary for every other frame and for anything it cannot decode exactly", () => {
    const heartbeat = encode({
      msg: {
        case: "heartbeat",
        value: {
          status: 1,
          warmModels: ["m"],
          capacity: { totalMemoryGb: 64, slots: [{ model: "m", numRunning: 2 }] },
        },
      },
    });
    const register = encode({
      msg: { case: "register", value: { authToken: "t", serial: "S", models: [{ id: "m" }] } },
    });
    const toolCall = encode({
      msg: {
        case: "inferenceChunk",
        value: {
          requestId: "r",
          deltas: [{ delta: { case: "toolCall", value: { index: 1, id: "c", name: "f", arguments: "{}" } } }],
        },
      },
    });
    const chunk = encode({
      msg: { case: "inferenceChunk", value: { requestId: "r", deltas: [{ delta: { case: "content", value: "a" } }] } },
    });
    const complete = encode({
      msg: { case: "inferenceComplete", value: { requestId: "r", usage: { promptTokens: 1 } } },
    });
    const usageAgain = encode({ msg: { case: "inferenceComplete", value: { usage: { completionTokens: 7 } } } });
    const unknownField = Buffer.concat([chunk, Buffer.from([(15 << 3) | 0, 1])]);
    // finish_reason = -1: a ten-byte varint.
    const negativeEnum = Buffer.concat([
      Buffer.from([(5 << 3) | 2, 11, (2 << 3) | 0]),
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
    ]);
    const invalidUtf8 = Buffer.from([(4 << 3) | 2, 8, (2 << 3) | 2, 6, (2 << 3) | 2, 4, 0x61, 0xff, 0xc3, 0x62]);
    const cases: [string, Buffer][] = [
      ["heartbeat", heartbeat],
      ["register", register],
      ["tool call delta", toolCall],
      ["unknown field", unknownField],
      ["negative enum", negativeEnum],
      // Repeated message fields merge in protobuf: two chunk members, two complete members (usage merged).
      ["two chunk members", Buffer.concat([chunk, chunk])],
      ["two complete members", Buffer.concat([complete, usageAgain])],
      [
        "accepted then chunk",
        Buffer.concat([encode({ msg: { case: "inferenceAccepted", value: { requestId: "a" } } }), chunk]),
      ],
    ];
    for (const [label, bytes] of cases) same(bytes, label);
    // Strings are strict UTF-8 in protobuf-es (a fatal TextDecoder): both decoders must reject the frame.
    assert.throws(() => fromBinary(ProviderMessageSchema, invalidUtf8));
    assert.throws(() => decodeProviderMessage(invalidUtf8));
    // ... and the TextDecoder drops a leading byte-order mark, which the fast path must not keep.
    same(
      encode({
        msg: {
          case: "inferenceChunk",
          value: { requestId: "\uFEFFr", deltas: [{ delta: { case: "content", value: "\uFEFFhi" } }] },
        },
      }),
      "leading BOM",
    );
    assert.equal(
      decodeProviderMessage(Buffer.concat([complete, usageAgain])).msg.value &&
        (
          decodeProviderMessage(Buffer.concat([complete, usageAgain])).msg.value as {
            usage?: { promptTokens: number; completionTokens: number };
          }
        ).usage?.completionTokens,
      7,
    );
  });

  it("throws like fromBinary on truncated input", () => {
    const bytes = encode({
      msg: {
        case: "inferenceChunk",
        value: { requestId: "req", deltas: [{ delta: { case: "content", value: "hello" } }] },
      },
    });
    for (let cut = 1; cut < bytes.length; cut++) {
      const part = bytes.subarray(0, cut);
      let expected: unknown;
      try {
        expected = fromBinary(ProviderMessageSchema, part);
      } catch {
        assert.throws(() => decodeProviderMessage(part), `cut at ${cut}`);
        continue;
      }
      assert.deepStrictEqual(decodeProviderMessage(part), expected, `cut at ${cut}`);
    }
  });

  it("agrees with fromBinary on 500 generated chunk and complete frames", () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const text = () =>
      Array.from({ length: rnd(12) }, () => String.fromCodePoint([32 + rnd(90), 0xe9, 0x4e2d, 0x1f600][rnd(4)]!)).join(
        "",
      );
    for (let i = 0; i < 500; i++) {
      const kinds = ["role", "content", "reasoning"] as const;
      const init: Init =
        rnd(2) === 0
          ? {
              msg: {
                case: "inferenceChunk",
                value: {
                  requestId: `req_${i}`,
                  deltas: Array.from({ length: rnd(40) }, () => ({ delta: { case: kinds[rnd(3)]!, value: text() } })),
                },
              },
            }
          : {
              msg: {
                case: "inferenceComplete",
                value: {
                  requestId: `req_${i}`,
                  finishReason: rnd(5),
                  ...(rnd(3) > 0
                    ? {
                        usage: { promptTokens: rnd(100_000), completionTokens: rnd(70_000), reasoningTokens: rnd(500) },
                      }
                    : {}),
                },
              },
            };
      same(encode(init), `frame ${i}`);
    }
  });
});
