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

export function decodeRelay(data: Uint8Array): RelayFrame[] | undefined {
  const o = parseObject(data);
  if (!o || !Array.isArray(o.frames)) return undefined;
  return (o.frames as unknown[]).filter(
    (f): f is RelayFrame =>
      typeof f === "object" &&
      f !== null &&
      isString((f as RelayFrame).requestId) &&
      isString((f as RelayFrame).providerId),
  );
}

export function encodeRelay(frames: readonly RelayFrame[]): Uint8Array {
  return encode({ frames });
}

export function decodeCancel(data: Uint8Array): ForwardedCancel | undefined {
  const o = parseObject(data);
  return o && isString(o.requestId) && isString(o.providerId) && isString(o.reason)
    ? (o as unknown as ForwardedCancel)
    : undefined;
}

export function decodeLoad(data: Uint8Array): ForwardedLoad | undefined {
  const o = parseObject(data);
  return o && isString(o.providerId) && isString(o.model) ? (o as unknown as ForwardedLoad) : undefined;
}

export const textOf = (b: Uint8Array): string => decoder.decode(b);
export const bytesOf = (s: string): Uint8Array => encoder.encode(s);
