/** What the OwnerRelay tests share: a local Mac's fake channel and the messages a forwarding node sends. */
import assert from "node:assert/strict";
import { clusterSubjects, encode } from "../../../src/cluster/cluster-messages.js";
import type { InferenceDispatch, ProviderChannel } from "../../../src/dispatch/provider-channel.js";
import type { ProviderEvent } from "../../../src/inference/types.js";
import { OwnerRelay, type OwnerRelayOptions } from "../../../src/cluster/owner-relay.js";
import { ProviderRegistry } from "../../../src/registry/provider-registry.js";
import type { PickResult } from "../../../src/scheduler/types.js";
import { FakeClock } from "../../../src/util/clock.js";
import { MODEL, registration } from "../registry/fixtures.js";
import { FakeTransport } from "./fake-transport.js";

export const WALL_MS = 1_800_000_000_000;
export const subjects = clusterSubjects("fleet");
export const traits = {
  maxTokens: 100,
  estimatedPromptTokens: 40,
  hasTools: false,
  requiresVision: false,
  stream: true,
};

/** A local Mac's channel: records what the relay asks of it; the test plays its events. */
export class FakeChannel implements ProviderChannel {
  readonly dispatched: { req: InferenceDispatch; onEvent: (e: ProviderEvent) => void }[] = [];
  readonly cancelled: [string, string][] = [];
  readonly loads: string[] = [];
  accepts = true;
  constructor(readonly providerId: string) {}
  dispatch(req: InferenceDispatch, onEvent: (e: ProviderEvent) => void): boolean {
    if (!this.accepts) return false;
    this.dispatched.push({ req, onEvent });
    return true;
  }
  cancel(requestId: string, reason: string): void {
    this.cancelled.push([requestId, reason]);
  }
  loadModel(model: string): void {
    this.loads.push(model);
  }
  /** Plays an event of the request's dispatch. */
  emit(requestId: string, e: ProviderEvent): void {
    const d = this.dispatched.find((x) => x.req.requestId === requestId);
    assert.ok(d, `dispatched ${requestId}`);
    d.onEvent(e);
  }
}

export const picked = (o: Partial<Extract<PickResult, { kind: "picked" }>> = {}): PickResult => ({
  kind: "picked",
  providerId: "p1",
  reason: "warm",
  cold: false,
  reservedTokens: 1000,
  costMs: 500,
  ...o,
});

export const forwarded = (requestId: string, o: Record<string, unknown> = {}) =>
  encode({
    requestId,
    providerId: "p1",
    model: MODEL,
    body: '{"messages":[]}',
    traits,
    shape: "base",
    from: "n2",
    notAfterMs: WALL_MS,
    ...o,
  });

export const chunk = (text: string): ProviderEvent => ({ kind: "chunk", deltas: [{ kind: "content", text }] });
export const complete: ProviderEvent = {
  kind: "complete",
  finishReason: "stop",
  usage: { promptTokens: 40, completionTokens: 3, reasoningTokens: 0 },
};

/** An owner holding one Mac, p1 (a {@link FakeChannel}), that admits every forward ({@link picked}); `o` overrides. */
export function ownerOfP1(o: Partial<OwnerRelayOptions> = {}) {
  const clock = new FakeClock();
  const transport = new FakeTransport();
  const registry = new ProviderRegistry();
  registry.add(registration("A"), clock.nowMs(), "p1");
  const p1 = new FakeChannel("p1");
  const relay = new OwnerRelay({
    subjects,
    transport,
    registry,
    local: { channel: (id) => (id === "p1" ? p1 : undefined) },
    ownerRoute: () => picked(),
    clock,
    wallNowMs: () => WALL_MS,
    ...o,
  });
  return { relay, p1, transport, registry };
}
