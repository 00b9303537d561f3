/**
 * A fast path for decoding the provider frames that arrive per request (InferenceAccepted, InferenceChunk with
 * role/content/reasoning deltas, InferenceComplete). protobuf-es's reflective `fromBinary` allocated about a
 * third of the coordinator's heap per request in the gateway benchmark (a Map and a reflection wrapper per
 * nested message, one message per delta); this decoder builds the same plain message objects directly.
 *
 * It is deliberately partial: anything it does not handle exactly as protobuf-es would (other frame kinds,
 * tool-call deltas, unknown fields, a repeated message field that needs merging, groups, malformed input) makes
 * it return `undefined`, and {@link decodeProviderMessage} falls back to `fromBinary`. So the result is always
 * what `fromBinary` returns, which the unit test checks field for field on generated and edge-case frames.
 */
import { isUtf8 } from "node:buffer";
import { fromBinary } from "@bufbuild/protobuf";
import {
  ProviderMessageSchema,
  type Delta,
  type InferenceAccepted,
  type InferenceChunk,
  type InferenceComplete,
  type ProviderMessage,
  type Usage,
} from "../../gen/coordinator/provider/v1/provider_pb.js";

/** Decodes one ProviderMessage (fast path for per-request frames, `fromBinary` for everything else). */
export function decodeProviderMessage(bytes: Uint8Array): ProviderMessage {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return decodeFast(buf) ?? fromBinary(ProviderMessageSchema, bytes);
}

/** A frame that is not a ProviderMessage at all (see {@link decodeOrMalformed}). */
export const MALFORMED_FRAME: ProviderMessage = {
  $typeName: "coordinator.provider.v1.ProviderMessage",
  msg: { case: undefined },
};

/**
 * Decodes a frame; bytes that are not a ProviderMessage become {@link MALFORMED_FRAME} instead of a throw, so
 * the session can say why it ends (grpc-js would end the stream with a bare INTERNAL) and the log names it.
 */
export function decodeOrMalformed(bytes: Buffer): ProviderMessage {
  try {
    return decodeProviderMessage(bytes);
  } catch {
    return MALFORMED_FRAME;
  }
}

/** Cursor over one buffer; every read returns -1 (varints) or false on anything outside the fast path. */
class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  /** A varint of at most 5 bytes as uint32 (-1 if longer, e.g. a negative enum, or truncated). */
  varint(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.pos >= this.end) return -1;
      const byte = this.buf[this.pos++]!;
      result += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return shift === 28 && byte > 0x0f ? -1 : result;
    }
    return -1;
  }

  /** The bounds of a length-delimited field's payload, advancing past it (undefined if out of range). */
  lengthDelimited(): [number, number] | undefined {
    const len = this.varint();
    if (len < 0 || this.pos + len > this.end) return undefined;
    const start = this.pos;
    this.pos += len;
    return [start, this.pos];
  }

  /**
   * A proto3 string. protobuf-es decodes with a fatal TextDecoder that also drops a leading byte-order mark:
   * invalid UTF-8 and a leading BOM go to the generic decoder so the result (or the error) is identical.
   */
  string(): string | undefined {
    const r = this.lengthDelimited();
    if (r === undefined) return undefined;
    const [start, end] = r;
    const b = this.buf;
    for (let i = start; i < end; i++) {
      if (b[i]! >= 0x80) {
        // Not pure ASCII: validate (simdutf) and check for a BOM at the start.
        if (!isUtf8(b.subarray(start, end)) || (b[start] === 0xef && b[start + 1] === 0xbb && b[start + 2] === 0xbf))
          return undefined;
        break;
      }
    }
    return b.toString("utf8", start, end);
  }
}

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

function decodeFast(buf: Buffer): ProviderMessage | undefined {
  const r = new Reader(buf, 0, buf.length);
  let msg: ProviderMessage["msg"] = { case: undefined };
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag < 0 || (tag & 7) !== WIRE_LEN || msg.case !== undefined) return undefined; // a second member may need merging
    const field = tag >>> 3;
    const span = r.lengthDelimited();
    if (!span) return undefined;
    if (field === 3) {
      const value = accepted(new Reader(buf, span[0], span[1]));
      if (!value) return undefined;
      msg = { case: "inferenceAccepted", value };
    } else if (field === 4) {
      const value = chunk(new Reader(buf, span[0], span[1]));
      if (!value) return undefined;
      msg = { case: "inferenceChunk", value };
    } else if (field === 5) {
      const value = complete(new Reader(buf, span[0], span[1]));
      if (!value) return undefined;
      msg = { case: "inferenceComplete", value };
    } else return undefined;
  }
  return { $typeName: "coordinator.provider.v1.ProviderMessage", msg };
}

function accepted(r: Reader): InferenceAccepted | undefined {
  let requestId = "";
  while (r.pos < r.end) {
    if (r.varint() !== ((1 << 3) | WIRE_LEN)) return undefined;
    const s = r.string();
    if (s === undefined) return undefined;
    requestId = s;
  }
  return { $typeName: "coordinator.provider.v1.InferenceAccepted", requestId };
}

function chunk(r: Reader): InferenceChunk | undefined {
  let requestId = "";
  const deltas: Delta[] = [];
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === ((1 << 3) | WIRE_LEN)) {
      const s = r.string();
      if (s === undefined) return undefined;
      requestId = s;
    } else if (tag === ((2 << 3) | WIRE_LEN)) {
      const span = r.lengthDelimited();
      const d = span && delta(new Reader(r.buf, span[0], span[1]));
      if (!d) return undefined;
      deltas.push(d);
    } else return undefined;
  }
  return { $typeName: "coordinator.provider.v1.InferenceChunk", requestId, deltas };
}

const deltaCases = [undefined, "role", "content", "reasoning"] as const;

function delta(r: Reader): Delta | undefined {
  let value: Delta["delta"] = { case: undefined };
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = tag >>> 3;
    // role, content, reasoning: string members of the oneof (the last one wins, as in protobuf-es).
    if (tag < 0 || (tag & 7) !== WIRE_LEN || field < 1 || field > 3) return undefined;
    const s = r.string();
    if (s === undefined) return undefined;
    value = { case: deltaCases[field]!, value: s } as Delta["delta"];
  }
  return { $typeName: "coordinator.provider.v1.Delta", delta: value };
}

function complete(r: Reader): InferenceComplete | undefined {
  const out: InferenceComplete = {
    $typeName: "coordinator.provider.v1.InferenceComplete",
    requestId: "",
    finishReason: 0,
  };
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === ((1 << 3) | WIRE_LEN)) {
      const s = r.string();
      if (s === undefined) return undefined;
      out.requestId = s;
    } else if (tag === ((2 << 3) | WIRE_VARINT)) {
      const v = r.varint();
      if (v < 0 || v > 0x7fffffff) return undefined; // negative or out-of-range enum: the generic decoder
      out.finishReason = v;
    } else if (tag === ((3 << 3) | WIRE_LEN) && out.usage === undefined) {
      const span = r.lengthDelimited();
      const u = span && usage(new Reader(r.buf, span[0], span[1]));
      if (!u) return undefined;
      out.usage = u;
    } else return undefined;
  }
  return out;
}

function usage(r: Reader): Usage | undefined {
  const u: Usage = {
    $typeName: "coordinator.provider.v1.Usage",
    promptTokens: 0,
    completionTokens: 0,
    reasoningTokens: 0,
  };
  while (r.pos < r.end) {
    const tag = r.varint();
    const v = tag >= 0 && (tag & 7) === WIRE_VARINT ? r.varint() : -1;
    if (v < 0) return undefined;
    if (tag >>> 3 === 1) u.promptTokens = v;
    else if (tag >>> 3 === 2) u.completionTokens = v;
    else if (tag >>> 3 === 3) u.reasoningTokens = v;
    else return undefined;
  }
  return u;
}
