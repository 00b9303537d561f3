/**
 * The protocol edge: every value a provider sends is validated and bounded before it reaches the registry, the
 * router, the logs or the ledger; and the frames the coordinator sends carry exactly what the caller gave.
 */
import assert from "node:assert/strict";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import {
  CoordinatorMessageSchema,
  ErrorReason,
  FinishReason,
  HeartbeatSchema,
  InferenceChunkSchema,
  InferenceCompleteSchema,
  InferenceErrorSchema,
  ProviderMessageSchema,
  ProviderStatus,
  RegisterSchema,
  SlotState,
  ThermalState,
  type CoordinatorMessage,
  type InferenceChunk,
} from "../../../gen/coordinator/provider/v1/provider_pb.js";
import type { RequestTraits } from "../../../src/inference/types.js";
import {
  cancelFrame,
  challengeFrame,
  inferenceRequestFrame,
  loadModelFrame,
  registerAckFrame,
} from "../../../src/protocol/coordinator-frames.js";
import {
  completeFromFrame,
  deltasFromChunk,
  errorFromFrame,
  heartbeatFromFrame,
  registrationFromFrame,
} from "../../../src/protocol/frames.js";
import { decodeProviderMessage } from "../../../src/protocol/provider-message-decoder.js";
import { ProtocolViolation, wireBounds } from "../../../src/protocol/wire-bounds.js";

const key = new Uint8Array(32).fill(1);
const register = (r: MessageInitShape<typeof RegisterSchema> = {}) =>
  create(RegisterSchema, {
    authToken: "pt-x",
    serial: "MAC-1",
    version: "0.7.0",
    publicKey: key,
    models: [{ id: "gpt-oss-20b", sizeBytes: 12n }],
    ...r,
  });
const heartbeat = (h: MessageInitShape<typeof HeartbeatSchema> = {}) => create(HeartbeatSchema, h);
const slot = (s: NonNullable<NonNullable<MessageInitShape<typeof HeartbeatSchema>["capacity"]>["slots"]>[number]) =>
  heartbeat({ capacity: { slots: [s] } });
const chunk = (deltas: NonNullable<MessageInitShape<typeof InferenceChunkSchema>["deltas"]>) =>
  create(InferenceChunkSchema, { deltas });
const U32_MAX = 2 ** 32 - 1;
const U64_MAX = 2n ** 64n - 1n;

function violation(fn: () => unknown, field: RegExp): void {
  assert.throws(
    fn,
    (e: unknown) => e instanceof ProtocolViolation && field.test(e.field),
    `expected a violation of ${field}`,
  );
}

/** A ProviderMessage member through the wire and the coordinator's decoder, as a session receives it. */
function viaWire<C extends "register" | "heartbeat" | "inferenceChunk" | "inferenceComplete" | "inferenceError">(
  c: C,
  value: Extract<MessageInitShape<typeof ProviderMessageSchema>["msg"], { case: C }>["value"],
) {
  const bytes = toBinary(
    ProviderMessageSchema,
    create(ProviderMessageSchema, {
      msg: { case: c, value } as NonNullable<MessageInitShape<typeof ProviderMessageSchema>["msg"]>,
    }),
  );
  const m = decodeProviderMessage(bytes);
  assert.equal(m.msg.case, c);
  return m.msg.value as Extract<typeof m.msg, { case: C }>["value"];
}

/** A CoordinatorMessage through the wire (what the provider decodes). */
const roundTrip = (m: CoordinatorMessage) =>
  fromBinary(CoordinatorMessageSchema, toBinary(CoordinatorMessageSchema, m));

describe("frames: Register", () => {
  it("accepts an honest registration", () => {
    const r = registrationFromFrame(register());
    assert.equal(r.serial, "MAC-1");
    assert.deepEqual(
      r.models.map((m) => m.id),
      ["gpt-oss-20b"],
    );
    assert.deepEqual(r.publicKey, key);
  });

  it("maps every field of a full registration, read off the wire", () => {
    const value: MessageInitShape<typeof RegisterSchema> = {
      authToken: "pt-secret",
      serial: "C02XK1:ab.c-9",
      version: "0.6.5",
      hardware: { chipName: "Apple M4 Max", chipFamily: "M4", memoryGb: 128, memoryBandwidthGbs: 546.5, gpuCores: 40 },
      decodeTps: 85.25,
      prefillTps: 1200,
      maxModelSlots: 3,
      models: [
        {
          id: "gpt-oss-20b",
          sizeBytes: 12_000_000_000n,
          quantization: "mxfp4",
          contextLength: 131_072,
          isVision: false,
          templateRenderOk: true,
        },
        {
          id: "mlx-community/gemma-3@4bit",
          sizeBytes: 2n ** 41n,
          quantization: "4bit",
          contextLength: wireBounds.maxContextTokens,
          isVision: true,
          templateRenderOk: false,
        },
        { id: "qwen3:8b", sizeBytes: 0n },
      ],
      publicKey: new Uint8Array(32).map((_, i) => i),
      privateOnly: true,
    };
    assert.deepStrictEqual(registrationFromFrame(viaWire("register", value)), {
      authToken: "pt-secret",
      publicKey: new Uint8Array(32).map((_, i) => i),
      serial: "C02XK1:ab.c-9",
      version: "0.6.5",
      hardware: { chipName: "Apple M4 Max", chipFamily: "M4", memoryGb: 128, memoryBandwidthGbs: 546.5, gpuCores: 40 },
      decodeTps: 85.25,
      prefillTps: 1200,
      maxModelSlots: 3,
      models: [
        {
          id: "gpt-oss-20b",
          sizeBytes: 12_000_000_000,
          quantization: "mxfp4",
          contextLength: 131_072,
          isVision: false,
          templateRenderOk: true,
        },
        {
          id: "mlx-community/gemma-3@4bit",
          sizeBytes: 2 ** 41,
          quantization: "4bit",
          contextLength: wireBounds.maxContextTokens,
          isVision: true,
          templateRenderOk: false,
        },
        // template_render_ok absent on the wire: no opinion (undefined), not false.
        {
          id: "qwen3:8b",
          sizeBytes: 0,
          quantization: "",
          contextLength: 0,
          isVision: false,
          templateRenderOk: undefined,
        },
      ],
      privateOnly: true,
    });
  });

  it("defaults absent hardware, rates, slots and flags", () => {
    const r = registrationFromFrame(create(RegisterSchema, { serial: "S", publicKey: key }));
    assert.deepStrictEqual(r, {
      authToken: "",
      publicKey: key,
      serial: "S",
      version: "",
      hardware: { chipName: "", chipFamily: "", memoryGb: 0, memoryBandwidthGbs: 0, gpuCores: 0 },
      decodeTps: 0,
      prefillTps: 0,
      maxModelSlots: 1,
      models: [],
      privateOnly: false,
    });
  });

  it("reads max_model_slots 0 as 1 and caps it at the per-provider model bound", () => {
    const cases: [number, number][] = [
      [0, 1],
      [1, 1],
      [7, 7],
      [wireBounds.maxModelsPerProvider, wireBounds.maxModelsPerProvider],
      [wireBounds.maxModelsPerProvider + 1, wireBounds.maxModelsPerProvider],
      [U32_MAX, wireBounds.maxModelsPerProvider],
    ];
    for (const [maxModelSlots, expected] of cases)
      assert.equal(
        registrationFromFrame(register({ maxModelSlots })).maxModelSlots,
        expected,
        `max_model_slots ${maxModelSlots}`,
      );
  });

  it("keeps non-finite rates out", () => {
    const r = registrationFromFrame(register({ decodeTps: Number.NaN, prefillTps: Number.POSITIVE_INFINITY }));
    assert.ok(Number.isFinite(r.decodeTps) && Number.isFinite(r.prefillTps));
  });

  it("reads negative, zero and non-finite rates and memory figures as 0, and keeps positive ones exactly", () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -1, -0, 0, -Number.MIN_VALUE]) {
      const r = registrationFromFrame(
        register({ decodeTps: bad, prefillTps: bad, hardware: { memoryGb: bad, memoryBandwidthGbs: bad } }),
      );
      assert.ok(Object.is(r.decodeTps, 0) && Object.is(r.prefillTps, 0), `rates ${bad}`);
      assert.ok(Object.is(r.hardware.memoryGb, 0) && Object.is(r.hardware.memoryBandwidthGbs, 0), `memory ${bad}`);
    }
    const r = registrationFromFrame(
      register({
        decodeTps: Number.MIN_VALUE,
        prefillTps: 1e300,
        hardware: { memoryGb: 0.5, memoryBandwidthGbs: Number.MAX_VALUE },
      }),
    );
    assert.deepEqual(
      [r.decodeTps, r.prefillTps, r.hardware.memoryGb, r.hardware.memoryBandwidthGbs],
      [Number.MIN_VALUE, 1e300, 0.5, Number.MAX_VALUE],
    );
  });

  it("refuses serials with NUL, controls, HTML, or past the length bound", () => {
    for (const serial of [
      "MAC\u00001",
      "MAC\n1",
      "<b>MAC</b>",
      "",
      " MAC",
      "x".repeat(wireBounds.maxSerialChars + 1),
    ]) {
      violation(() => registrationFromFrame(register({ serial })), /^serial$/);
    }
    assert.equal(
      registrationFromFrame(register({ serial: "x".repeat(wireBounds.maxSerialChars) })).serial.length,
      wireBounds.maxSerialChars,
    );
  });

  it("bounds the auth token by length only", () => {
    violation(
      () => registrationFromFrame(register({ authToken: "t".repeat(wireBounds.maxAuthTokenChars + 1) })),
      /^auth_token$/,
    );
    assert.equal(
      registrationFromFrame(register({ authToken: "t".repeat(wireBounds.maxAuthTokenChars) })).authToken.length,
      wireBounds.maxAuthTokenChars,
    );
    // Empty is not a protocol violation here: authentication refuses it later.
    assert.equal(registrationFromFrame(register({ authToken: "" })).authToken, "");
  });

  it("bounds the version to 32 printable characters and hardware labels to the label bound", () => {
    assert.equal(registrationFromFrame(register({ version: "v".repeat(32) })).version.length, 32);
    violation(() => registrationFromFrame(register({ version: "v".repeat(33) })), /^version$/);
    for (const control of ["\u0000", "\t", "\u007f", "\u0085", "\u2028", "\u2029"]) {
      violation(() => registrationFromFrame(register({ version: `0.7${control}` })), /^version$/);
      violation(
        () => registrationFromFrame(register({ hardware: { chipName: `M4${control}` } })),
        /^hardware\.chip_name$/,
      );
      violation(
        () => registrationFromFrame(register({ hardware: { chipFamily: `M4${control}` } })),
        /^hardware\.chip_family$/,
      );
      violation(
        () => registrationFromFrame(register({ models: [{ id: "m", quantization: `4bit${control}` }] })),
        /^models\[0\]\.quantization$/,
      );
    }
    const long = "c".repeat(wireBounds.maxLabelChars);
    assert.equal(
      registrationFromFrame(register({ hardware: { chipName: long, chipFamily: long } })).hardware.chipName,
      long,
    );
    violation(() => registrationFromFrame(register({ hardware: { chipName: `${long}c` } })), /^hardware\.chip_name$/);
    violation(
      () => registrationFromFrame(register({ hardware: { chipFamily: `${long}c` } })),
      /^hardware\.chip_family$/,
    );
    violation(
      () => registrationFromFrame(register({ models: [{ id: "m", quantization: `${long}q` }] })),
      /^models\[0\]\.quantization$/,
    );
    // Printable non-ASCII is fine.
    assert.equal(
      registrationFromFrame(register({ hardware: { chipName: "Apple M4 Max™ — 苹果" } })).hardware.chipName,
      "Apple M4 Max™ — 苹果",
    );
  });

  it("refuses model ids with NUL, HTML, or 100 KB of text, and duplicated ids", () => {
    for (const id of [
      "gpt\u0000oss",
      "<script>alert(1)</script>",
      "a".repeat(100_000),
      "x".repeat(wireBounds.maxModelIdChars + 1),
    ]) {
      violation(() => registrationFromFrame(register({ models: [{ id }] })), /^models\[0\]\.id$/);
    }
    violation(() => registrationFromFrame(register({ models: [{ id: "m" }, { id: "m" }] })), /^models\[1\]\.id$/);
    assert.equal(
      registrationFromFrame(register({ models: [{ id: "mlx-community/gemma-3@4bit" }] })).models[0]!.id,
      "mlx-community/gemma-3@4bit",
    );
  });

  it("names the offending model by index, and refuses an empty id", () => {
    violation(
      () => registrationFromFrame(register({ models: [{ id: "a" }, { id: "b" }, { id: "" }] })),
      /^models\[2\]\.id$/,
    );
    violation(() => registrationFromFrame(register({ models: [{ id: "/leading-slash" }] })), /^models\[0\]\.id$/);
    // Ids are compared exactly: case differs, so no duplicate.
    assert.deepEqual(
      registrationFromFrame(register({ models: [{ id: "M" }, { id: "m" }] })).models.map((m) => m.id),
      ["M", "m"],
    );
  });

  it("bounds model sizes at 2 TiB and context lengths at 16,777,216 tokens", () => {
    const maxBytes = BigInt(wireBounds.maxModelBytes);
    assert.equal(
      registrationFromFrame(register({ models: [{ id: "m", sizeBytes: maxBytes }] })).models[0]!.sizeBytes,
      wireBounds.maxModelBytes,
    );
    for (const sizeBytes of [maxBytes + 1n, 2n ** 53n + 1n, U64_MAX]) {
      violation(
        () => registrationFromFrame(register({ models: [{ id: "m", sizeBytes }] })),
        /^models\[0\]\.size_bytes$/,
      );
    }
    assert.equal(
      registrationFromFrame(register({ models: [{ id: "m", contextLength: wireBounds.maxContextTokens }] })).models[0]!
        .contextLength,
      wireBounds.maxContextTokens,
    );
    for (const contextLength of [wireBounds.maxContextTokens + 1, U32_MAX]) {
      violation(
        () => registrationFromFrame(register({ models: [{ id: "m", contextLength }] })),
        /^models\[0\]\.context_length$/,
      );
    }
  });

  it("caps the model list and requires a 32-byte Ed25519 public key", () => {
    const models = Array.from({ length: wireBounds.maxModelsPerProvider + 1 }, (_, i) => ({ id: `m${i}` }));
    violation(() => registrationFromFrame(register({ models })), /^models$/);
    assert.equal(
      registrationFromFrame(register({ models: models.slice(1) })).models.length,
      wireBounds.maxModelsPerProvider,
    );
    violation(() => registrationFromFrame(register({ publicKey: new Uint8Array(0) })), /^public_key$/);
    violation(() => registrationFromFrame(register({ publicKey: new Uint8Array(31) })), /^public_key$/);
    violation(() => registrationFromFrame(register({ publicKey: new Uint8Array(33) })), /^public_key$/);
  });

  it("gives the violation a message naming field and reason", () => {
    assert.throws(
      () => registrationFromFrame(register({ publicKey: new Uint8Array(0) })),
      (e: unknown) => {
        assert.ok(e instanceof ProtocolViolation);
        assert.equal(e.name, "ProtocolViolation");
        assert.equal(e.message, "public_key: an Ed25519 public key (32 bytes) is required");
        return true;
      },
    );
  });
});

describe("frames: Heartbeat", () => {
  it("caps a 2^64 token budget and refuses NUL model names in slots and warm models", () => {
    const h = heartbeatFromFrame(
      create(HeartbeatSchema, {
        capacity: {
          slots: [{ model: "gpt-oss-20b", activeTokenBudgetMax: 2n ** 64n - 1n, kvBytesPerToken: 2n ** 63n }],
        },
      }),
    );
    assert.ok(h.slots[0]!.tokenBudgetMax <= 2 ** 40 && Number.isSafeInteger(h.slots[0]!.tokenBudgetMax));
    violation(
      () => heartbeatFromFrame(create(HeartbeatSchema, { capacity: { slots: [{ model: "bad\u0000" }] } })),
      /slots\[0\]\.model/,
    );
    violation(() => heartbeatFromFrame(create(HeartbeatSchema, { warmModels: ["bad\u0000"] })), /warm_models\[0\]/);
    violation(
      () =>
        heartbeatFromFrame(
          create(HeartbeatSchema, {
            capacity: { slots: [{ model: "m", maxConcurrency: wireBounds.maxSlotCounter + 1 }] },
          }),
        ),
      /max_concurrency/,
    );
  });

  it("maps every field of a full heartbeat, read off the wire", () => {
    const value: MessageInitShape<typeof HeartbeatSchema> = {
      status: ProviderStatus.SERVING,
      system: { memoryPressure: 0.42, cpuUsage: 0.9, thermalState: ThermalState.SERIOUS },
      capacity: {
        totalMemoryGb: 96,
        freeForLoadGb: 31.5,
        slots: [
          {
            model: "gpt-oss-20b",
            state: SlotState.RUNNING,
            numRunning: 3,
            numWaiting: 1,
            maxConcurrency: 8,
            activeTokenBudgetUsed: 40_000n,
            activeTokenBudgetMax: 131_072n,
            kvBytesPerToken: 49_152n,
            observedDecodeTps: 71.5,
            observedPrefillTps: 950,
            modelLoadTimeMs: 4_200,
          },
          { model: "qwen3:8b", state: SlotState.LOADING },
        ],
      },
      warmModels: ["gpt-oss-20b"],
    };
    assert.deepStrictEqual(heartbeatFromFrame(viaWire("heartbeat", value)), {
      status: "serving",
      memoryPressure: 0.42,
      cpuUsage: 0.9,
      thermal: "serious",
      totalMemoryGb: 96,
      freeForLoadGb: 31.5,
      slots: [
        {
          model: "gpt-oss-20b",
          state: "running",
          numRunning: 3,
          numWaiting: 1,
          maxConcurrency: 8,
          tokenBudgetUsed: 40_000,
          tokenBudgetMax: 131_072,
          kvBytesPerToken: 49_152,
          observedDecodeTps: 71.5,
          observedPrefillTps: 950,
          modelLoadTimeMs: 4_200,
        },
        {
          model: "qwen3:8b",
          state: "loading",
          numRunning: 0,
          numWaiting: 0,
          maxConcurrency: 0,
          tokenBudgetUsed: 0,
          tokenBudgetMax: 0,
          kvBytesPerToken: 0,
          observedDecodeTps: 0,
          observedPrefillTps: 0,
          modelLoadTimeMs: 0,
        },
      ],
      warmModels: ["gpt-oss-20b"],
    });
  });

  it("reads an empty heartbeat as an idle, nominal machine with nothing loaded and free_for_load not reported", () => {
    assert.deepStrictEqual(heartbeatFromFrame(heartbeat()), {
      status: "idle",
      memoryPressure: 0,
      cpuUsage: 0,
      thermal: "nominal",
      totalMemoryGb: 0,
      freeForLoadGb: undefined,
      slots: [],
      warmModels: [],
    });
  });

  it("maps each provider status, and unknown values to idle", () => {
    const cases: [ProviderStatus, string][] = [
      [ProviderStatus.UNSPECIFIED, "idle"],
      [ProviderStatus.IDLE, "idle"],
      [ProviderStatus.SERVING, "serving"],
      [ProviderStatus.DRAINING, "draining"],
      [4 as ProviderStatus, "idle"],
      [-1 as ProviderStatus, "idle"],
      [0x7fffffff as ProviderStatus, "idle"],
    ];
    for (const [status, expected] of cases)
      assert.equal(heartbeatFromFrame(heartbeat({ status })).status, expected, `status ${status}`);
  });

  it("maps each thermal state, and unknown or absent ones to nominal", () => {
    const cases: [ThermalState, string][] = [
      [ThermalState.UNSPECIFIED, "nominal"],
      [ThermalState.NOMINAL, "nominal"],
      [ThermalState.FAIR, "fair"],
      [ThermalState.SERIOUS, "serious"],
      [ThermalState.CRITICAL, "critical"],
      [5 as ThermalState, "nominal"],
      [-4 as ThermalState, "nominal"],
    ];
    for (const [thermalState, expected] of cases)
      assert.equal(
        heartbeatFromFrame(heartbeat({ system: { thermalState } })).thermal,
        expected,
        `thermal ${thermalState}`,
      );
    assert.equal(heartbeatFromFrame(heartbeat({ capacity: {} })).thermal, "nominal");
  });

  it("maps each slot state, and unknown ones to idle", () => {
    const cases: [SlotState, string][] = [
      [SlotState.UNSPECIFIED, "idle"],
      [SlotState.RUNNING, "running"],
      [SlotState.IDLE, "idle"],
      [SlotState.LOADING, "loading"],
      [SlotState.CRASHED, "crashed"],
      [5 as SlotState, "idle"],
      [-1 as SlotState, "idle"],
    ];
    for (const [state, expected] of cases)
      assert.equal(heartbeatFromFrame(slot({ model: "m", state })).slots[0]!.state, expected, `slot state ${state}`);
  });

  it("clamps memory pressure and CPU usage to 0..1, reading non-finite values as 0", () => {
    const cases: [number, number][] = [
      [0.25, 0.25],
      [1, 1],
      [1.5, 1],
      [1e308, 1],
      [-0.2, 0],
      [Number.NaN, 0],
      [Number.NEGATIVE_INFINITY, 0],
      // +Infinity is not finite, so it reads as 0 (no pressure), not as the clamp's 1.
      [Number.POSITIVE_INFINITY, 0],
    ];
    for (const [v, expected] of cases) {
      const h = heartbeatFromFrame(heartbeat({ system: { memoryPressure: v, cpuUsage: v } }));
      assert.equal(h.memoryPressure, expected, `memory_pressure ${v}`);
      assert.equal(h.cpuUsage, expected, `cpu_usage ${v}`);
    }
  });

  it("keeps free_for_load_gb absent as undefined, and reads negative or non-finite values as 0", () => {
    const free = (freeForLoadGb: number | undefined) =>
      heartbeatFromFrame(heartbeat({ capacity: freeForLoadGb === undefined ? {} : { freeForLoadGb } })).freeForLoadGb;
    assert.equal(free(undefined), undefined);
    assert.equal(free(0), 0);
    assert.equal(free(12.5), 12.5);
    assert.equal(free(-3), 0);
    assert.equal(free(Number.NaN), 0);
    assert.equal(free(Number.POSITIVE_INFINITY), 0);
    // Presence survives the wire (proto3 optional).
    assert.equal(heartbeatFromFrame(viaWire("heartbeat", { capacity: { freeForLoadGb: 0 } })).freeForLoadGb, 0);
    assert.equal(heartbeatFromFrame(viaWire("heartbeat", { capacity: { totalMemoryGb: 8 } })).freeForLoadGb, undefined);
    for (const totalMemoryGb of [-1, Number.NaN, Number.POSITIVE_INFINITY])
      assert.equal(heartbeatFromFrame(heartbeat({ capacity: { totalMemoryGb } })).totalMemoryGb, 0);
  });

  it("bounds every slot counter at 4,096 and names the slot", () => {
    const max = wireBounds.maxSlotCounter;
    const s = heartbeatFromFrame(slot({ model: "m", numRunning: max, numWaiting: max, maxConcurrency: max })).slots[0]!;
    assert.deepEqual([s.numRunning, s.numWaiting, s.maxConcurrency], [max, max, max]);
    for (const field of ["numRunning", "numWaiting", "maxConcurrency"] as const) {
      const wire = { numRunning: "num_running", numWaiting: "num_waiting", maxConcurrency: "max_concurrency" }[field];
      for (const v of [max + 1, U32_MAX]) {
        violation(
          () => heartbeatFromFrame(heartbeat({ capacity: { slots: [{ model: "ok" }, { model: "m", [field]: v }] } })),
          new RegExp(`^capacity\\.slots\\[1\\]\\.${wire}$`),
        );
      }
    }
  });

  it("clamps each token budget and KV cost to 2^40, keeping smaller values exact", () => {
    const cap = 2 ** 40;
    const cases: [bigint, number][] = [
      [0n, 0],
      [1n, 1],
      [BigInt(cap) - 1n, cap - 1],
      [BigInt(cap), cap],
      [BigInt(cap) + 1n, cap],
      [2n ** 53n + 1n, cap],
      [U64_MAX, cap],
    ];
    for (const [v, expected] of cases) {
      const s = heartbeatFromFrame(
        slot({ model: "m", activeTokenBudgetUsed: v, activeTokenBudgetMax: v, kvBytesPerToken: v }),
      ).slots[0]!;
      assert.deepEqual(
        [s.tokenBudgetUsed, s.tokenBudgetMax, s.kvBytesPerToken],
        [expected, expected, expected],
        `budget ${v}`,
      );
    }
    // Read off the wire too (uint64 arrives as a bigint).
    const s = heartbeatFromFrame(
      viaWire("heartbeat", {
        capacity: {
          slots: [{ model: "m", activeTokenBudgetUsed: U64_MAX, activeTokenBudgetMax: 5n, kvBytesPerToken: 2n ** 41n }],
        },
      }),
    ).slots[0]!;
    assert.deepEqual([s.tokenBudgetUsed, s.tokenBudgetMax, s.kvBytesPerToken], [cap, 5, cap]);
  });

  it("reads non-finite or negative observed rates as 0 and passes the load time through", () => {
    for (const v of [Number.NaN, Number.POSITIVE_INFINITY, -5]) {
      const s = heartbeatFromFrame(slot({ model: "m", observedDecodeTps: v, observedPrefillTps: v })).slots[0]!;
      assert.deepEqual([s.observedDecodeTps, s.observedPrefillTps], [0, 0], `rate ${v}`);
    }
    // The load time is not bounded here (any uint32).
    assert.equal(heartbeatFromFrame(slot({ model: "m", modelLoadTimeMs: U32_MAX })).slots[0]!.modelLoadTimeMs, U32_MAX);
  });

  it("caps slots and warm models at 64 each and checks every id", () => {
    const n = wireBounds.maxModelsPerProvider;
    const ids = Array.from({ length: n + 1 }, (_, i) => `m${i}`);
    violation(
      () => heartbeatFromFrame(heartbeat({ capacity: { slots: ids.map((model) => ({ model })) } })),
      /^capacity\.slots$/,
    );
    violation(() => heartbeatFromFrame(heartbeat({ warmModels: ids })), /^warm_models$/);
    const h = heartbeatFromFrame(
      heartbeat({ capacity: { slots: ids.slice(1).map((model) => ({ model })) }, warmModels: ids.slice(1) }),
    );
    assert.equal(h.slots.length, n);
    assert.deepEqual(h.warmModels, ids.slice(1));
    violation(() => heartbeatFromFrame(heartbeat({ warmModels: ["a", ""] })), /^warm_models\[1\]$/);
    violation(
      () => heartbeatFromFrame(heartbeat({ warmModels: ["x".repeat(wireBounds.maxModelIdChars + 1)] })),
      /^warm_models\[0\]$/,
    );
    violation(() => heartbeatFromFrame(slot({ model: "" })), /^capacity\.slots\[0\]\.model$/);
    violation(() => heartbeatFromFrame(slot({ model: "<img src=x>" })), /^capacity\.slots\[0\]\.model$/);
  });

  it("keeps duplicated slot and warm-model ids as sent (unlike Register, no uniqueness check)", () => {
    const h = heartbeatFromFrame(
      heartbeat({
        capacity: {
          slots: [
            { model: "m", numRunning: 1 },
            { model: "m", numRunning: 2 },
          ],
        },
        warmModels: ["m", "m"],
      }),
    );
    assert.deepEqual(
      h.slots.map((s) => [s.model, s.numRunning]),
      [
        ["m", 1],
        ["m", 2],
      ],
    );
    assert.deepEqual(h.warmModels, ["m", "m"]);
  });
});

describe("frames: InferenceChunk deltas", () => {
  it("maps each delta kind in order, read off the wire", () => {
    const c = viaWire("inferenceChunk", {
      requestId: "req_1",
      deltas: [
        { delta: { case: "role", value: "assistant" } },
        { delta: { case: "reasoning", value: "hmm…" } },
        { delta: { case: "content", value: "Héllo 🌍" } },
        { delta: { case: "toolCall", value: { index: 2, id: "call_1", name: "get_weather", arguments: '{"city":' } } },
        { delta: { case: "toolCall", value: { index: 2, arguments: '"Paris"}' } } },
      ],
    });
    assert.deepStrictEqual(deltasFromChunk(c), [
      { kind: "role", role: "assistant" },
      { kind: "reasoning", text: "hmm…" },
      { kind: "content", text: "Héllo 🌍" },
      { kind: "tool_call", index: 2, id: "call_1", name: "get_weather", arguments: '{"city":' },
      // Absent id and name are left out, not set to "" or undefined.
      { kind: "tool_call", index: 2, arguments: '"Paris"}' },
    ]);
  });

  it("returns no deltas for an empty chunk", () => {
    assert.deepStrictEqual(deltasFromChunk(create(InferenceChunkSchema)), []);
  });

  it("drops empty content and reasoning and empty oneofs, but keeps an empty role and a bare tool-call index", () => {
    const out = deltasFromChunk(
      chunk([
        { delta: { case: "content", value: "" } },
        { delta: { case: "reasoning", value: "" } },
        { delta: { case: undefined } },
        { delta: { case: "role", value: "" } },
        { delta: { case: "toolCall", value: {} } },
      ]),
    );
    assert.deepStrictEqual(out, [
      { kind: "role", role: "" },
      { kind: "tool_call", index: 0 },
    ]);
  });

  it("ignores a delta kind it does not know, whether from a newer schema on the wire or in memory", () => {
    // ProviderMessage.inference_chunk { deltas { <field 9>: "x" } }, then a content delta.
    const unknownDelta = [(9 << 3) | 2, 1, 0x78];
    const contentDelta = [(2 << 3) | 2, 1, 0x79];
    const chunkBody = [
      (2 << 3) | 2,
      unknownDelta.length,
      ...unknownDelta,
      (2 << 3) | 2,
      contentDelta.length,
      ...contentDelta,
    ];
    const m = decodeProviderMessage(new Uint8Array([(4 << 3) | 2, chunkBody.length, ...chunkBody]));
    assert.equal(m.msg.case, "inferenceChunk");
    assert.deepStrictEqual(deltasFromChunk(m.msg.value as InferenceChunk), [{ kind: "content", text: "y" }]);
    const future = chunk([{ delta: { case: "content", value: "a" } }]);
    future.deltas.unshift({
      ...future.deltas[0]!,
      delta: { case: "image", value: "png" } as unknown as InferenceChunk["deltas"][number]["delta"],
    });
    assert.deepStrictEqual(deltasFromChunk(future), [{ kind: "content", text: "a" }]);
  });

  it("passes content, reasoning and tool-call arguments through verbatim (they are model output, not labels)", () => {
    const text = `line1\nline2\u0000\u2028<b>${"z".repeat(20_000)}`;
    const out = deltasFromChunk(
      chunk([
        { delta: { case: "content", value: text } },
        { delta: { case: "reasoning", value: text } },
        { delta: { case: "toolCall", value: { index: 0, arguments: text } } },
      ]),
    );
    assert.deepStrictEqual(out, [
      { kind: "content", text },
      { kind: "reasoning", text },
      { kind: "tool_call", index: 0, arguments: text },
    ]);
  });

  it("bounds a chunk's text: content, reasoning and tool-call arguments together, at the bound and one past it", () => {
    const third = Math.floor(wireBounds.maxChunkTextChars / 3);
    const deltas = (extra: number) => [
      { delta: { case: "content" as const, value: "c".repeat(third) } },
      { delta: { case: "reasoning" as const, value: "r".repeat(third) } },
      {
        delta: {
          case: "toolCall" as const,
          value: { index: 0, arguments: "a".repeat(wireBounds.maxChunkTextChars - 2 * third + extra) },
        },
      },
    ];
    assert.equal(deltasFromChunk(create(InferenceChunkSchema, { deltas: deltas(0) })).length, 3);
    assert.throws(
      () => deltasFromChunk(create(InferenceChunkSchema, { deltas: deltas(1) })),
      (e: unknown) =>
        e instanceof ProtocolViolation &&
        e.field === "inference_chunk.deltas" &&
        e.message.includes(`more than ${wireBounds.maxChunkTextChars} characters of text`),
    );
  });

  it("bounds deltas per chunk and tool-call fields", () => {
    const many = Array.from({ length: wireBounds.maxDeltasPerChunk + 1 }, () => ({
      delta: { case: "content" as const, value: "x" },
    }));
    violation(() => deltasFromChunk(create(InferenceChunkSchema, { deltas: many })), /deltas/);
    assert.equal(
      deltasFromChunk(create(InferenceChunkSchema, { deltas: many.slice(1) })).length,
      wireBounds.maxDeltasPerChunk,
    );
    violation(
      () =>
        deltasFromChunk(
          create(InferenceChunkSchema, { deltas: [{ delta: { case: "toolCall", value: { index: 256 } } }] }),
        ),
      /tool_call\.index/,
    );
  });

  it("counts empty deltas against the per-chunk bound", () => {
    const empties = Array.from({ length: wireBounds.maxDeltasPerChunk + 1 }, () => ({
      delta: { case: "content" as const, value: "" },
    }));
    violation(() => deltasFromChunk(chunk(empties)), /^inference_chunk\.deltas$/);
  });

  it("bounds the role, tool-call index, id and name exactly at their limits", () => {
    const role = "r".repeat(wireBounds.maxRoleChars);
    assert.deepStrictEqual(deltasFromChunk(chunk([{ delta: { case: "role", value: role } }])), [
      { kind: "role", role },
    ]);
    violation(() => deltasFromChunk(chunk([{ delta: { case: "role", value: `${role}r` } }])), /^delta\.role$/);
    violation(() => deltasFromChunk(chunk([{ delta: { case: "role", value: "assistant\n" } }])), /^delta\.role$/);

    const tool = (value: { index?: number; id?: string; name?: string }) =>
      deltasFromChunk(chunk([{ delta: { case: "toolCall", value } }]));
    assert.equal(
      (tool({ index: wireBounds.maxToolCallIndex })[0] as { index: number }).index,
      wireBounds.maxToolCallIndex,
    );
    violation(() => tool({ index: U32_MAX }), /^delta\.tool_call\.index$/);
    const id = "i".repeat(wireBounds.maxToolCallIdChars);
    const name = "n".repeat(wireBounds.maxToolNameChars);
    assert.deepStrictEqual(tool({ index: 1, id, name }), [{ kind: "tool_call", index: 1, id, name }]);
    violation(() => tool({ id: `${id}i` }), /^delta\.tool_call\.id$/);
    violation(() => tool({ name: `${name}n` }), /^delta\.tool_call\.name$/);
    violation(() => tool({ id: "call\u0000" }), /^delta\.tool_call\.id$/);
    violation(() => tool({ name: "fn\u2029" }), /^delta\.tool_call\.name$/);
  });

  it("refuses the whole chunk when one delta is bad, even after good ones", () => {
    violation(
      () =>
        deltasFromChunk(
          chunk([{ delta: { case: "content", value: "ok" } }, { delta: { case: "role", value: "\u0007" } }]),
        ),
      /^delta\.role$/,
    );
  });
});

describe("frames: InferenceComplete", () => {
  it("refuses a usage count no request can reach (3e9 is a valid uint32) without failing the completion", () => {
    const ok = completeFromFrame(
      create(InferenceCompleteSchema, { usage: { promptTokens: wireBounds.maxUsageTokens, completionTokens: 3 } }),
    );
    assert.equal(ok.usageRefused, undefined);
    assert.equal(ok.usage.promptTokens, wireBounds.maxUsageTokens);
    const bad = completeFromFrame(
      create(InferenceCompleteSchema, { usage: { promptTokens: 3_000_000_000, completionTokens: 3 } }),
    );
    assert.match(bad.usageRefused ?? "", /usage\.prompt_tokens/);
    assert.deepEqual(bad.usage, { promptTokens: 0, completionTokens: 0, reasoningTokens: 0 });
    const bad2 = completeFromFrame(
      create(InferenceCompleteSchema, { usage: { completionTokens: wireBounds.maxUsageTokens + 1 } }),
    );
    assert.match(bad2.usageRefused ?? "", /usage\.completion_tokens/);
  });

  it("maps a full completion exactly, read off the wire", () => {
    const c = viaWire("inferenceComplete", {
      requestId: "req_9",
      finishReason: FinishReason.TOOL_CALLS,
      usage: { promptTokens: 120, completionTokens: 45, reasoningTokens: 30 },
    });
    assert.deepStrictEqual(completeFromFrame(c), {
      kind: "complete",
      finishReason: "tool_calls",
      usage: { promptTokens: 120, completionTokens: 45, reasoningTokens: 30 },
    });
  });

  it("reads absent usage as zero usage, not as a refusal", () => {
    const c = completeFromFrame(create(InferenceCompleteSchema));
    assert.deepStrictEqual(c, {
      kind: "complete",
      finishReason: "stop",
      usage: { promptTokens: 0, completionTokens: 0, reasoningTokens: 0 },
    });
    assert.ok(!("usageRefused" in c));
  });

  it("maps each finish reason, and unknown ones (including a negative enum off the wire) to stop", () => {
    const cases: [FinishReason, string][] = [
      [FinishReason.UNSPECIFIED, "stop"],
      [FinishReason.STOP, "stop"],
      [FinishReason.LENGTH, "length"],
      [FinishReason.TOOL_CALLS, "tool_calls"],
      [FinishReason.CONTENT_FILTER, "content_filter"],
      [5 as FinishReason, "stop"],
      [99 as FinishReason, "stop"],
    ];
    for (const [finishReason, expected] of cases)
      assert.equal(
        completeFromFrame(create(InferenceCompleteSchema, { finishReason })).finishReason,
        expected,
        `finish ${finishReason}`,
      );
    // finish_reason = -1: a ten-byte varint, decoded as -1 (open enum).
    const negative = decodeProviderMessage(
      new Uint8Array([(5 << 3) | 2, 11, (2 << 3) | 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
    );
    assert.equal(negative.msg.case, "inferenceComplete");
    assert.equal(completeFromFrame(negative.msg.value as Parameters<typeof completeFromFrame>[0]).finishReason, "stop");
  });

  it("refuses each usage count past the bound, keeping the finish reason and naming the first bad field", () => {
    const max = wireBounds.maxUsageTokens;
    for (const [field, wire] of [
      ["promptTokens", "prompt_tokens"],
      ["completionTokens", "completion_tokens"],
      ["reasoningTokens", "reasoning_tokens"],
    ] as const) {
      for (const v of [max + 1, U32_MAX]) {
        const c = completeFromFrame(
          create(InferenceCompleteSchema, {
            finishReason: FinishReason.LENGTH,
            usage: { promptTokens: 1, completionTokens: 1, reasoningTokens: 1, [field]: v },
          }),
        );
        assert.equal(c.kind, "complete");
        assert.equal(c.finishReason, "length");
        assert.equal(c.usageRefused, `usage.${wire}: out of range (0..${max})`);
        assert.deepStrictEqual(c.usage, { promptTokens: 0, completionTokens: 0, reasoningTokens: 0 });
      }
    }
    const both = completeFromFrame(
      create(InferenceCompleteSchema, { usage: { completionTokens: U32_MAX, reasoningTokens: U32_MAX } }),
    );
    assert.match(both.usageRefused ?? "", /^usage\.completion_tokens:/);
    const atMax = completeFromFrame(
      create(InferenceCompleteSchema, { usage: { promptTokens: max, completionTokens: max, reasoningTokens: max } }),
    );
    assert.deepStrictEqual(atMax.usage, { promptTokens: max, completionTokens: max, reasoningTokens: max });
    assert.equal(atMax.usageRefused, undefined);
  });
});

describe("frames: InferenceError", () => {
  it("maps an out-of-range error status to 500 and strips control characters from the message", () => {
    const e = errorFromFrame(
      create(InferenceErrorSchema, { statusCode: 200, message: `boom\u0000\nsecond line${"x".repeat(10_000)}` }),
    );
    assert.equal(e.statusCode, 500);
    assert.ok(!/[\u0000-\u001f]/.test(e.message));
    assert.ok(e.message.length <= wireBounds.maxErrorMessageChars + 1);
    assert.equal(errorFromFrame(create(InferenceErrorSchema, { statusCode: 429, message: "busy" })).statusCode, 429);
  });

  it("maps a full error exactly, read off the wire", () => {
    const e = viaWire("inferenceError", {
      requestId: "req_3",
      statusCode: 503,
      message: "no KV room",
      reason: ErrorReason.CAPACITY,
    });
    assert.deepStrictEqual(errorFromFrame(e), {
      kind: "error",
      statusCode: 503,
      message: "no KV room",
      reason: "capacity",
    });
  });

  it("keeps statuses 400..599 and reads everything else as 500", () => {
    const cases: [number, number][] = [
      [0, 500],
      [200, 500],
      [399, 500],
      [400, 400],
      [404, 404],
      [500, 500],
      [504, 504],
      [599, 599],
      [600, 500],
      [U32_MAX, 500],
    ];
    for (const [statusCode, expected] of cases)
      assert.equal(
        errorFromFrame(create(InferenceErrorSchema, { statusCode, message: "m" })).statusCode,
        expected,
        `status ${statusCode}`,
      );
  });

  it("maps each error reason, and unknown ones to unspecified", () => {
    const cases: [ErrorReason, string][] = [
      [ErrorReason.UNSPECIFIED, "unspecified"],
      [ErrorReason.CONTEXT_OVERFLOW, "context_overflow"],
      [ErrorReason.CAPACITY, "capacity"],
      [ErrorReason.MODEL_LOAD_FAILED, "model_load_failed"],
      [ErrorReason.INSUFFICIENT_MEMORY, "insufficient_memory"],
      [ErrorReason.TEMPLATE, "template"],
      [ErrorReason.INTERNAL, "internal"],
      [ErrorReason.CANCELLED, "cancelled"],
      [ErrorReason.DRAINING, "draining"],
      [ErrorReason.INVALID_REQUEST, "invalid_request"],
      [10 as ErrorReason, "unspecified"],
      [-1 as ErrorReason, "unspecified"],
    ];
    for (const [reason, expected] of cases)
      assert.equal(
        errorFromFrame(create(InferenceErrorSchema, { statusCode: 500, reason })).reason,
        expected,
        `reason ${reason}`,
      );
  });

  it("gives an empty message a default, cuts a long one at 512 characters with an ellipsis, and blanks every control", () => {
    assert.equal(errorFromFrame(create(InferenceErrorSchema, { statusCode: 500 })).message, "provider error");
    const max = wireBounds.maxErrorMessageChars;
    assert.equal(errorFromFrame(create(InferenceErrorSchema, { message: "a".repeat(max) })).message, "a".repeat(max));
    assert.equal(
      errorFromFrame(create(InferenceErrorSchema, { message: "a".repeat(max + 1) })).message,
      `${"a".repeat(max)}…`,
    );
    assert.equal(
      errorFromFrame(create(InferenceErrorSchema, { message: "a\u0000b\tc\u007fd\u0085e\u2028f\u2029g" })).message,
      "a b c d e f g",
    );
    // A message made only of controls is blanked, not replaced by the default.
    assert.equal(errorFromFrame(create(InferenceErrorSchema, { message: "\u0000\n" })).message, "  ");
    // The cut never splits a surrogate pair: the emoji straddling the bound goes whole.
    const straddling = errorFromFrame(
      create(InferenceErrorSchema, { message: `${"x".repeat(max - 1)}😀tail` }),
    ).message;
    assert.equal(straddling, `${"x".repeat(max - 1)}…`);
    // Markup is not a control character: it is left for the HTTP layer to escape.
    assert.equal(errorFromFrame(create(InferenceErrorSchema, { message: "<script>" })).message, "<script>");
  });
});

describe("frames: coordinator frames", () => {
  const traits: RequestTraits = {
    maxTokens: 4_096,
    estimatedPromptTokens: 1_234,
    hasTools: true,
    requiresVision: false,
    stream: true,
  };

  it("builds an InferenceRequest carrying the id, model, body, traits and trace context through the wire", () => {
    const body = new TextEncoder().encode('{"model":"gpt-oss-20b","messages":[]}');
    const trace = { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "k=v" };
    const f = inferenceRequestFrame("req_1", "gpt-oss-20b", body, traits, trace);
    assert.equal(f.msg.case, "inferenceRequest");
    const back = roundTrip(f);
    assert.deepStrictEqual(back, f);
    assert.equal(back.msg.case, "inferenceRequest");
    const r = back.msg.value as Extract<CoordinatorMessage["msg"], { case: "inferenceRequest" }>["value"];
    assert.equal(r.requestId, "req_1");
    assert.equal(r.model, "gpt-oss-20b");
    assert.deepEqual(r.bodyJson, body);
    assert.deepEqual(
      {
        maxTokens: r.traits?.maxTokens,
        estimatedPromptTokens: r.traits?.estimatedPromptTokens,
        hasTools: r.traits?.hasTools,
        requiresVision: r.traits?.requiresVision,
        stream: r.traits?.stream,
      },
      traits,
    );
    assert.deepEqual(r.traceContext, trace);
  });

  it("maps each trait independently and defaults the trace context to none", () => {
    const flipped: RequestTraits = {
      maxTokens: 1,
      estimatedPromptTokens: 0,
      hasTools: false,
      requiresVision: true,
      stream: false,
    };
    const back = roundTrip(inferenceRequestFrame("r", "m", new Uint8Array(), flipped));
    const r = back.msg.value as Extract<CoordinatorMessage["msg"], { case: "inferenceRequest" }>["value"];
    assert.equal(r.traits?.maxTokens, 1);
    assert.equal(r.traits?.estimatedPromptTokens, 0);
    assert.equal(r.traits?.hasTools, false);
    assert.equal(r.traits?.requiresVision, true);
    assert.equal(r.traits?.stream, false);
    assert.deepEqual(r.traceContext, {});
    assert.equal(r.bodyJson.length, 0);
  });

  it("does not itself bound traits: a maxTokens outside uint32 builds a frame that cannot be encoded", () => {
    for (const maxTokens of [2 ** 32, 1.5, -1]) {
      const f = inferenceRequestFrame("r", "m", new Uint8Array(), { ...traits, maxTokens });
      assert.throws(() => toBinary(CoordinatorMessageSchema, f), /invalid uint32/, `maxTokens ${maxTokens}`);
    }
  });

  it("builds CancelInference, LoadModel, Challenge and RegisterAck frames that survive the wire", () => {
    const nonce = new Uint8Array(32).map((_, i) => 255 - i);
    const cases: [CoordinatorMessage, MessageInitShape<typeof CoordinatorMessageSchema>][] = [
      [
        cancelFrame("req_7", "client went away"),
        { msg: { case: "cancelInference", value: { requestId: "req_7", reason: "client went away" } } },
      ],
      [cancelFrame("req_8", ""), { msg: { case: "cancelInference", value: { requestId: "req_8" } } }],
      [loadModelFrame("qwen3:8b"), { msg: { case: "loadModel", value: { model: "qwen3:8b" } } }],
      [challengeFrame(nonce), { msg: { case: "challenge", value: { nonce } } }],
      [
        registerAckFrame("prov_abcdefghijklmnopqrst", 5_000, ["gpt-oss-20b", "qwen3:8b"]),
        {
          msg: {
            case: "registerAck",
            value: {
              providerId: "prov_abcdefghijklmnopqrst",
              heartbeatIntervalMs: 5_000,
              desiredModels: ["gpt-oss-20b", "qwen3:8b"],
            },
          },
        },
      ],
      [registerAckFrame("prov_x", 0, []), { msg: { case: "registerAck", value: { providerId: "prov_x" } } }],
    ];
    for (const [frame, expected] of cases) {
      const want = create(CoordinatorMessageSchema, expected);
      assert.deepStrictEqual(frame, want, `${expected.msg?.case}`);
      assert.deepStrictEqual(roundTrip(frame), want, `${expected.msg?.case} through the wire`);
    }
  });

  it("keeps the challenge nonce byte for byte", () => {
    const nonce = new Uint8Array([0, 1, 0xff, 0x80, 0x7f]);
    const back = roundTrip(challengeFrame(nonce));
    assert.equal(back.msg.case, "challenge");
    assert.deepEqual(Array.from((back.msg.value as { nonce: Uint8Array }).nonce), [0, 1, 0xff, 0x80, 0x7f]);
  });
});
