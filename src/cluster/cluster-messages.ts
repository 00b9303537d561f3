/**
 * What coordinators say to each other over NATS (cluster mode), and the subjects they say it on. JSON, because
 * every message is small and both ends are this code base; each decoder checks the shape it needs, since a
 * message on a shared bus may come from a different version of this code (or from something else entirely).
 *
 * Subjects, under the deployment's prefix:
 * - `<p>.nodes`: every node's heartbeat ({@link NodeBeat}), every `CLUSTER_HEARTBEAT_MS`.
 * - `<p>.node.<id>.dispatch`: request/reply; "run this request on your Mac" ({@link ForwardedDispatch}), answered
 *   at once with {@link DispatchAnswer}. No subscriber (the node died) is NATS's own "no responders".
 * - `<p>.node.<id>.events`: the Mac's events for requests this node forwarded ({@link RelayFrame}), plus the
 *   owner's keep-alive beats while a request is running.
 * - `<p>.node.<id>.cancel`, `<p>.node.<id>.load`: stop a forwarded request; load a model on a Mac.
 * - `<p>.node.<id>.end`: end a Mac's session there ({@link EndSession}: a fence or forgotten identity decided
 *   on another node; the decision itself is already in PostgreSQL).
 */
import type { ProviderEvent, RequestShape, RequestTraits } from "../inference/types.js";
import { isValidModelId } from "../protocol/wire-bounds.js";

/**
 * The largest relay message this node publishes, bytes: frames are batched up to it (a single larger frame goes
 * alone). Half of NATS's default `max_payload` (1 MiB), past which a publish throws.
 */
export const MAX_RELAY_MESSAGE_BYTES = 512 * 1024;

export interface ClusterSubjects {
  nodes: string;
  dispatch(node: string): string;
  events(node: string): string;
  cancel(node: string): string;
  load(node: string): string;
  end(node: string): string;
}

/** Subject-safe tokens only: a prefix or node id with a dot or wildcard would address other subjects. */
const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

export function isSubjectToken(s: string): boolean {
  return TOKEN.test(s);
}

export function clusterSubjects(prefix: string): ClusterSubjects {
  if (!isSubjectToken(prefix)) throw new Error(`cluster prefix must match ${TOKEN}, got ${JSON.stringify(prefix)}`);
  return {
    nodes: `${prefix}.nodes`,
    dispatch: (n) => `${prefix}.node.${n}.dispatch`,
    events: (n) => `${prefix}.node.${n}.events`,
    cancel: (n) => `${prefix}.node.${n}.cancel`,
    load: (n) => `${prefix}.node.${n}.load`,
    end: (n) => `${prefix}.node.${n}.end`,
  };
}

/** A node's heartbeat. */
export interface NodeBeat {
  node: string;
  /** Providers whose streams it owns. */
  providers: number;
}

/** "Run this request on your Mac": what the owner needs to admit it and send it on. */
export interface ForwardedDispatch {
  requestId: string;
  providerId: string;
  model: string;
  /** The normalized chat-completions body (UTF-8 JSON text). */
  body: string;
  traits: RequestTraits;
  shape: RequestShape;
  /** The requesting node: where the Mac's events go. */
  from: string;
  /** Wall-clock ms after which the owner must not start it (the requester has given up and moved on). */
  notAfterMs: number;
  /**
   * Wall-clock ms when the requester sent it: a young dispatch starts without waiting a turn (start-gate.ts).
   * Absent from older nodes, whose dispatches wait the turn.
   */
  sentAtMs?: number;
  callerAccountId?: string;
  pinnedAccountId?: string;
  traceContext?: Record<string, string>;
}

/** The owner's answer; a refusal carries the owner's view of the Mac (a provider-snapshot.ts value) when it has one. */
export type DispatchAnswer = { ok: true } | { ok: false; reason: string; snapshot?: unknown };

/** One of the Mac's events for a forwarded request, or (without `event`) a keep-alive beat for it. */
export interface RelayFrame {
  requestId: string;
  providerId: string;
  event?: ProviderEvent;
}

export interface ForwardedCancel {
  requestId: string;
  providerId: string;
  reason: string;
}

export interface EndSession {
  providerId: string;
  reason: string;
}

export function decodeEnd(data: Uint8Array): EndSession | undefined {
  const o = parseObject(data);
  return o && isString(o.providerId) && isString(o.reason) ? (o as unknown as EndSession) : undefined;
}

export interface ForwardedLoad {
  providerId: string;
  model: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encode(m: object): Uint8Array {
  return encoder.encode(JSON.stringify(m));
}

/** Parses a JSON object, or undefined for anything else. */
function parseObject(data: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(decoder.decode(data));
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const isString = (v: unknown): v is string => typeof v === "string";

export function decodeBeat(data: Uint8Array): NodeBeat | undefined {
  const o = parseObject(data);
  return o && isString(o.node) && typeof o.providers === "number" ? (o as unknown as NodeBeat) : undefined;
}

const SHAPES: ReadonlySet<string> = new Set<RequestShape>(["base", "tools", "vision"]);

/** The owner counts a forwarded request from its traits: a missing number would put NaN in its accounting. */
function isTraits(v: unknown): v is RequestTraits {
  if (typeof v !== "object" || v === null) return false;
  const t = v as Record<string, unknown>;
  return (
    Number.isFinite(t.maxTokens) &&
    Number.isFinite(t.estimatedPromptTokens) &&
    typeof t.hasTools === "boolean" &&
    typeof t.requiresVision === "boolean" &&
    typeof t.stream === "boolean"
  );
}

const isOptionalString = (v: unknown) => v === undefined || isString(v);
const isHeaders = (v: unknown) =>
  v === undefined || (typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every(isString));

export function decodeDispatch(data: Uint8Array): ForwardedDispatch | undefined {
  const o = parseObject(data);
  if (!o) return undefined;
  const ok =
    isString(o.requestId) &&
    isString(o.providerId) &&
    isString(o.model) &&
    isString(o.body) &&
    isString(o.from) &&
    // Events go to the subject named after `from`: a dot, space or wildcard in it would address other subjects
    // (or make the owner's publish throw).
    isSubjectToken(o.from) &&
    typeof o.notAfterMs === "number" &&
    (o.sentAtMs === undefined || (typeof o.sentAtMs === "number" && Number.isFinite(o.sentAtMs))) &&
    isTraits(o.traits) &&
    isString(o.shape) &&
    SHAPES.has(o.shape) &&
    isOptionalString(o.callerAccountId) &&
    isOptionalString(o.pinnedAccountId) &&
    isHeaders(o.traceContext);
  return ok ? (o as unknown as ForwardedDispatch) : undefined;
}

export function decodeAnswer(data: Uint8Array): DispatchAnswer | undefined {
  const o = parseObject(data);
  if (!o || typeof o.ok !== "boolean") return undefined;
  if (o.ok) return { ok: true };
  return {
    ok: false,
    reason: isString(o.reason) ? o.reason : "refused",
    ...(o.snapshot !== undefined ? { snapshot: o.snapshot } : {}),
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isDelta = (d: unknown) =>
  isObject(d) &&
  (d.kind === "content" || d.kind === "reasoning"
    ? isString(d.text)
    : d.kind === "tool_call"
      ? Number.isInteger(d.index) && [d.id, d.name, d.arguments].every(isOptionalString)
      : d.kind === "role" && isString(d.role));
const USAGE_KEYS = ["promptTokens", "completionTokens", "reasoningTokens"] as const;

/** The event's shape, as the request run reads it (a missing field would throw in its handler). */
function isEvent(e: unknown): e is ProviderEvent {
  if (!isObject(e)) return false;
  switch (e.kind) {
    case "accepted":
      return true;
    case "chunk":
      return Array.isArray(e.deltas) && e.deltas.every(isDelta);
    case "complete":
      return (
        isString(e.finishReason) &&
        isObject(e.usage) &&
        USAGE_KEYS.every((k) => Number.isFinite((e.usage as Record<string, unknown>)[k]))
      );
    case "error":
      return Number.isFinite(e.statusCode) && isString(e.message) && isString(e.reason);
    case "disconnected":
    case "refused":
      return isString(e.message);
    default:
      return false;
  }
}

/**
 * The frames of a relay message. A frame whose event has no known shape (a peer on another version, or a forged
 * message) becomes `disconnected` for its request, which then fails over or ends, rather than throwing in the
 * subscription (which would stall this connection's reader) or leaving the request waiting.
 */
export function decodeRelay(data: Uint8Array): RelayFrame[] | undefined {
  const o = parseObject(data);
  if (!o || !Array.isArray(o.frames)) return undefined;
  const out: RelayFrame[] = [];
  for (const f of o.frames as unknown[]) {
    if (!isObject(f) || !isString(f.requestId) || !isString(f.providerId)) continue;
    const frame: RelayFrame = { requestId: f.requestId, providerId: f.providerId };
    if (f.event !== undefined)
      frame.event = isEvent(f.event) ? f.event : { kind: "disconnected", message: "malformed relay frame" };
    out.push(frame);
  }
  return out;
}

export function encodeRelay(frames: readonly RelayFrame[]): Uint8Array {
  return encode({ frames });
}

/** `frames` as relay messages of at most `maxBytes` each, in order (a single larger frame is sent alone). */
export function encodeRelayBatches(frames: readonly RelayFrame[], maxBytes = MAX_RELAY_MESSAGE_BYTES): Uint8Array[] {
  const out: Uint8Array[] = [];
  let parts: string[] = [];
  let size = 0;
  const flush = () => {
    if (parts.length > 0) out.push(encoder.encode(`{"frames":[${parts.join(",")}]}`));
    parts = [];
    size = 0;
  };
  for (const f of frames) {
    const json = JSON.stringify(f);
    const bytes = Buffer.byteLength(json);
    // `size`: the frames so far joined with commas, exactly as they will be sent.
    if (parts.length > 0 && RELAY_ENVELOPE_BYTES + size + 1 + bytes > maxBytes) flush();
    size += (parts.length > 0 ? 1 : 0) + bytes;
    parts.push(json);
  }
  flush();
  return out;
}

/** `{"frames":[` and `]}`. */
const RELAY_ENVELOPE_BYTES = 13;

export function decodeCancel(data: Uint8Array): ForwardedCancel | undefined {
  const o = parseObject(data);
  return o && isString(o.requestId) && isString(o.providerId) && isString(o.reason)
    ? (o as unknown as ForwardedCancel)
    : undefined;
}

export function decodeLoad(data: Uint8Array): ForwardedLoad | undefined {
  const o = parseObject(data);
  return o && isString(o.providerId) && isString(o.model) && isValidModelId(o.model)
    ? (o as unknown as ForwardedLoad)
    : undefined;
}

export const textOf = (b: Uint8Array): string => decoder.decode(b);
export const bytesOf = (s: string): Uint8Array => encoder.encode(s);
