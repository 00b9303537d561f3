import assert from "node:assert/strict";
import { clusterSubjects } from "../../../src/cluster/cluster-messages.js";
import { NotDeliveredError } from "../../../src/cluster/cluster-transport.js";
import { Forwarder } from "../../../src/cluster/forwarder.js";
import type { InferenceDispatch } from "../../../src/dispatch/provider-channel.js";
import type { ProviderEvent } from "../../../src/inference/types.js";
import { FakeClock } from "../../../src/util/clock.js";
import { silentLogger } from "../../../src/util/logger.js";
import { FakeTransport, settle } from "./fake-transport.js";

const SILENCE_MS = 5000;
const DISPATCH_TIMEOUT_MS = 2000;
const WALL_MS = 1_800_000_000_000;
const subjects = clusterSubjects("fleet");

const request = (requestId: string, o: Partial<InferenceDispatch> = {}): InferenceDispatch => ({
  requestId,
  model: "m",
  bodyJson: new TextEncoder().encode('{"messages":[]}'),
  traits: { maxTokens: 100, estimatedPromptTokens: 10, hasTools: false, requiresVision: false, stream: true },
  ...o,
});

const chunk = (text: string): ProviderEvent => ({ kind: "chunk", deltas: [{ kind: "content", text }] });
const complete: ProviderEvent = {
  kind: "complete",
  finishReason: "stop",
  usage: { promptTokens: 10, completionTokens: 2, reasoningTokens: 0 },
};

describe("Forwarder", () => {
  let clock: FakeClock;
  let transport: FakeTransport;
  let fwd: Forwarder;
  let views: [string, unknown][];
  beforeEach(() => {
    views = [];
    clock = new FakeClock();
    transport = new FakeTransport();
    fwd = new Forwarder({
      self: "me",
      subjects,
      transport,
      clock,
      wallNowMs: () => WALL_MS,
      dispatchTimeoutMs: DISPATCH_TIMEOUT_MS,
      silenceMs: SILENCE_MS,
      log: silentLogger,
      onOwnerView: (node, snapshot) => views.push([node, snapshot]),
    });
  });

  /** Dispatches `requestId` to provider p1 owned by node `owner`; returns the events it receives. */
  function start(requestId: string, owner = "owner", providerId = "p1", o: Partial<InferenceDispatch> = {}) {
    const events: ProviderEvent[] = [];
    const ch = fwd.channel(providerId, owner);
    assert.equal(
      ch.dispatch(request(requestId, o), (e) => events.push(e)),
      true,
    );
    return { events, ch };
  }

  it("sends the owner the dispatch it needs to admit the request", () => {
    start("r1", "owner", "p1", { shape: "tools", callerAccountId: "acct", traceContext: { traceparent: "00-x" } });
    assert.equal(transport.requests.length, 1);
    const [q] = transport.requests;
    assert.equal(q?.subject, "fleet.node.owner.dispatch");
    assert.equal(q?.timeoutMs, DISPATCH_TIMEOUT_MS);
    assert.deepEqual(q?.body, {
      requestId: "r1",
      providerId: "p1",
      model: "m",
      body: '{"messages":[]}',
      traits: request("r1").traits,
      shape: "tools",
      from: "me",
      notAfterMs: WALL_MS + DISPATCH_TIMEOUT_MS,
      sentAtMs: WALL_MS,
      callerAccountId: "acct",
      traceContext: { traceparent: "00-x" },
    });
    assert.equal(fwd.pending, 1);
  });

  it("defaults the shape to base and leaves absent caller constraints out", () => {
    start("r1");
    const body = transport.requests[0]?.body;
    assert.equal(body?.shape, "base");
    assert.equal("callerAccountId" in (body ?? {}), false);
    assert.equal("pinnedAccountId" in (body ?? {}), false);
    assert.equal("traceContext" in (body ?? {}), false);
  });

  it("delivers an accepted request's events in order and ends it on the terminal one", async () => {
    const { events } = start("r1");
    transport.requests[0]?.answer({ ok: true });
    await settle();
    assert.equal(events.length, 0);
    fwd.receive([
      { requestId: "r1", providerId: "p1", event: { kind: "accepted" } },
      { requestId: "r1", providerId: "p1", event: chunk("a") },
    ]);
    fwd.receive([{ requestId: "r1", providerId: "p1", event: chunk("b") }]);
    assert.equal(fwd.pending, 1);
    fwd.receive([{ requestId: "r1", providerId: "p1", event: complete }]);
    assert.equal(fwd.pending, 0);
    fwd.receive([{ requestId: "r1", providerId: "p1", event: chunk("late") }]);
    assert.deepEqual(events, [{ kind: "accepted" }, chunk("a"), chunk("b"), complete]);
    assert.deepEqual(transport.published, [], "nothing cancelled");
  });

  it("routes frames by (request, provider) and ignores frames of requests it does not know", () => {
    const a = start("r1", "owner", "p1");
    const b = start("r1", "owner", "p2");
    fwd.receive([
      { requestId: "r1", providerId: "p2", event: chunk("to p2") },
      { requestId: "r2", providerId: "p1", event: chunk("unknown") },
    ]);
    assert.deepEqual(a.events, []);
    assert.deepEqual(b.events, [chunk("to p2")]);
  });

  const answers: {
    name: string;
    answer: object;
    kind: ProviderEvent["kind"];
    message: RegExp;
    views: [string, unknown][];
    /** Cancels published to the owner afterwards (a refusal runs nothing; an unreadable answer might have). */
    cancels: number;
  }[] = [
    {
      name: "a refusal",
      answer: { ok: false, reason: "all_busy" },
      kind: "refused",
      message: /owner owner refused: all_busy/,
      views: [],
      cancels: 0,
    },
    {
      name: "a refusal with the owner's view",
      answer: { ok: false, reason: "loading", snapshot: { v: 1, node: "owner" } },
      kind: "refused",
      message: /refused: loading/,
      views: [["owner", { v: 1, node: "owner" }]],
      cancels: 0,
    },
    {
      name: "a refusal without a reason",
      answer: { ok: false },
      kind: "refused",
      message: /refused: refused/,
      views: [],
      cancels: 0,
    },
    {
      name: "an unreadable answer",
      answer: { nope: 1 },
      kind: "disconnected",
      message: /unreadabl/,
      views: [],
      cancels: 1,
    },
  ];
  for (const c of answers)
    it(`turns ${c.name} into one ${c.kind} event and hands on the owner's view`, async () => {
      const { events } = start("r1");
      transport.requests[0]?.answer(c.answer);
      await settle();
      assert.deepEqual(
        events.map((e) => e.kind),
        [c.kind],
      );
      assert.match((events[0] as { message: string }).message, c.message);
      assert.deepEqual(views, c.views);
      assert.equal(fwd.pending, 0);
      assert.equal(transport.published.length, c.cancels, "a cancel only where the owner may have started it");
    });

  it("ignores a refusal relayed as an event: a refusal comes only as the dispatch's answer", async () => {
    const { events } = start("r1");
    transport.requests[0]?.answer({ ok: true });
    await settle();
    fwd.receive([{ requestId: "r1", providerId: "p1", event: { kind: "refused", message: "x" } }]);
    assert.equal(events.length, 0);
    assert.equal(fwd.pending, 1);
  });

  it("disconnects at once, sending nothing more, when nobody received the dispatch (no responders)", async () => {
    const { events } = start("r1");
    transport.requests[0]?.fail(new NotDeliveredError("no responders on fleet.node.owner.dispatch"));
    await settle();
    assert.deepEqual(transport.on("fleet.node.owner.cancel"), [], "nothing runs there: no cancel");
    assert.deepEqual(
      events.map((e) => e.kind),
      ["disconnected"],
    );
    assert.match((events[0] as { message: string }).message, /no responders/);
    assert.equal(fwd.pending, 0);
  });

  for (const failure of ["TIMEOUT", "disconnected while waiting"])
    it(`keeps a dispatch whose fate is unknown (${failure}) until the owner speaks or the silence ends it`, async () => {
      const { events } = start("r1");
      transport.requests[0]?.fail(new Error(failure));
      await settle();
      assert.equal(events.length, 0, "not failed over yet: the owner may have got it");
      assert.equal(fwd.pending, 1);
      // The owner did get it: its beat keeps the request, its events carry on.
      clock.advance(SILENCE_MS - 1);
      fwd.receive([{ requestId: "r1", providerId: "p1" }]);
      fwd.receive([
        { requestId: "r1", providerId: "p1", event: { kind: "chunk", deltas: [{ kind: "content", text: "x" }] } },
      ]);
      assert.deepEqual(
        events.map((e) => e.kind),
        ["chunk"],
      );
      // Then nothing more for silenceMs: cancelled at the owner and ended as a disconnect.
      clock.advance(SILENCE_MS);
      fwd.sweep();
      assert.deepEqual(transport.on("fleet.node.owner.cancel"), [
        { requestId: "r1", providerId: "p1", reason: "owner silent" },
      ]);
      assert.deepEqual(
        events.map((e) => e.kind),
        ["chunk", "disconnected"],
      );
      assert.equal(fwd.pending, 0);
    });

  it("ends a request whose owner has been silent for exactly silenceMs, not a millisecond before", async () => {
    const { events } = start("r1");
    transport.requests[0]?.answer({ ok: true });
    await settle();
    clock.advance(SILENCE_MS - 1);
    fwd.sweep();
    assert.equal(events.length, 0);
    clock.advance(1);
    fwd.sweep();
    assert.deepEqual(
      events.map((e) => e.kind),
      ["disconnected"],
    );
    assert.deepEqual(transport.on("fleet.node.owner.cancel"), [
      { requestId: "r1", providerId: "p1", reason: "owner silent" },
    ]);
    assert.equal(fwd.pending, 0);
    fwd.sweep();
    assert.equal(events.length, 1, "ended once");
  });

  it("counts the silence from the answer, and keep-alive beats and events postpone it", async () => {
    const { events } = start("r1");
    clock.advance(1000);
    transport.requests[0]?.answer({ ok: true });
    await settle();
    clock.advance(SILENCE_MS - 1);
    fwd.sweep();
    assert.equal(events.length, 0, "the answer counted as hearing from the owner");
    fwd.receive([{ requestId: "r1", providerId: "p1" }]);
    assert.equal(events.length, 0, "a beat is not an event");
    clock.advance(SILENCE_MS - 1);
    fwd.sweep();
    assert.equal(events.length, 0);
    fwd.receive([{ requestId: "r1", providerId: "p1", event: chunk("x") }]);
    clock.advance(SILENCE_MS - 1);
    fwd.sweep();
    assert.deepEqual(events, [chunk("x")]);
    clock.advance(1);
    fwd.sweep();
    assert.deepEqual(
      events.map((e) => e.kind),
      ["chunk", "disconnected"],
    );
  });

  it("fails only the presumed-dead node's requests, each followed by a cancel to it (it may be only cut off)", () => {
    const a = start("r1", "dead");
    const b = start("r2", "alive", "p2");
    fwd.nodeDied("dead");
    assert.equal(a.events.length, 1);
    assert.equal(a.events[0]?.kind, "disconnected");
    assert.deepEqual(b.events, []);
    assert.equal(fwd.pending, 1);
    assert.deepEqual(transport.on("fleet.node.dead.cancel"), [
      { requestId: "r1", providerId: "p1", reason: "owner presumed dead" },
    ]);
    assert.deepEqual(transport.on("fleet.node.alive.cancel"), []);
  });

  it("counts an owner's silence from this node's reconnect (heardAll), not from before its outage", async () => {
    const { events } = start("r1");
    transport.requests[0]?.answer({ ok: true });
    await settle();
    clock.advance(SILENCE_MS * 5); // our own connection was down all this time
    fwd.heardAll();
    fwd.sweep();
    assert.equal(events.length, 0, "not ended for a silence nobody could have broken");
    clock.advance(SILENCE_MS);
    fwd.sweep();
    assert.deepEqual(
      events.map((e) => e.kind),
      ["disconnected"],
    );
  });

  it("publishes a cancel on cancel() and delivers nothing after it", async () => {
    const { events, ch } = start("r1");
    ch.cancel("r1", "consumer gone");
    assert.deepEqual(transport.on("fleet.node.owner.cancel"), [
      { requestId: "r1", providerId: "p1", reason: "consumer gone" },
    ]);
    assert.equal(fwd.pending, 0);
    transport.requests[0]?.answer({ ok: false, reason: "late" });
    await settle();
    fwd.receive([{ requestId: "r1", providerId: "p1", event: chunk("late") }]);
    fwd.nodeDied("owner");
    clock.advance(SILENCE_MS);
    fwd.sweep();
    assert.equal(events.length, 0);
    ch.cancel("r1", "again");
    assert.equal(transport.on("fleet.node.owner.cancel").length, 1, "an unknown request is not cancelled twice");
  });

  it("ignores a rejected dispatch request after cancel()", async () => {
    const { events, ch } = start("r1");
    ch.cancel("r1", "lost race");
    transport.requests[0]?.fail(new Error("TIMEOUT"));
    await settle();
    assert.equal(events.length, 0);
    assert.equal(transport.on("fleet.node.owner.cancel").length, 1);
  });

  it("refuses a duplicate dispatch of the same (request, provider) and sends nothing for it", () => {
    const { ch } = start("r1");
    assert.equal(
      ch.dispatch(request("r1"), () => assert.fail("no events for the duplicate")),
      false,
    );
    assert.equal(transport.requests.length, 1);
    assert.equal(
      fwd.channel("p2", "owner").dispatch(request("r1"), () => {}),
      true,
      "another provider is fine",
    );
  });

  it("ignores relayed events of an unknown kind (but they still prove the owner alive)", async () => {
    const { events } = start("r1");
    transport.requests[0]?.answer({ ok: true });
    await settle();
    clock.advance(SILENCE_MS - 1);
    fwd.receive([
      { requestId: "r1", providerId: "p1", event: { kind: "explode" } as unknown as ProviderEvent },
      { requestId: "r1", providerId: "p1", event: null as unknown as ProviderEvent },
      { requestId: "r1", providerId: "p1", event: "complete" as unknown as ProviderEvent },
    ]);
    assert.equal(events.length, 0);
    assert.equal(fwd.pending, 1);
    clock.advance(SILENCE_MS - 1);
    fwd.sweep();
    assert.equal(events.length, 0);
  });

  it("forwards a load to the owner", () => {
    fwd.channel("p1", "owner").loadModel("gemma");
    assert.deepEqual(transport.on("fleet.node.owner.load"), [{ providerId: "p1", model: "gemma" }]);
  });
});

describe("Forwarder at the bus's message bound (NATS max_payload)", () => {
  const subjects = clusterSubjects("fleet");
  const dispatchOf = (body: string): InferenceDispatch => ({
    requestId: "r1",
    model: "m",
    bodyJson: new TextEncoder().encode(body),
    traits: { maxTokens: 10, estimatedPromptTokens: 5, hasTools: false, requiresVision: false, stream: true },
  });
  const make = (maxMessageBytes: number) => {
    const transport = new FakeTransport();
    const fwd = new Forwarder({
      self: "me",
      subjects,
      transport,
      clock: new FakeClock(),
      wallNowMs: () => 0,
      dispatchTimeoutMs: 500,
      silenceMs: 1_000,
      maxMessageBytes,
      log: silentLogger,
    });
    return { transport, fwd };
  };
  const sizeOf = (body: string) => {
    const { transport, fwd } = make(Number.MAX_SAFE_INTEGER);
    fwd.channel("p1", "owner").dispatch(dispatchOf(body), () => {});
    return JSON.stringify(transport.requests[0]!.body).length;
  };

  it("forwards a dispatch of exactly max_payload bytes", async () => {
    const body = "x".repeat(1000);
    const { transport, fwd } = make(sizeOf(body));
    const events: ProviderEvent[] = [];
    fwd.channel("p1", "owner").dispatch(dispatchOf(body), (e) => events.push(e));
    await settle();
    assert.equal(transport.requests.length, 1);
    assert.deepEqual(events, []);
  });

  it("sends nothing for one byte more, and fails the attempt over as capacity (no breaker, another Mac)", async () => {
    const body = "x".repeat(1000);
    const { transport, fwd } = make(sizeOf(body) - 1);
    const events: ProviderEvent[] = [];
    fwd.channel("p1", "owner").dispatch(dispatchOf(body), (e) => events.push(e));
    await settle();
    assert.equal(transport.requests.length, 0, "never offered to the bus");
    assert.equal(events.length, 1);
    const e = events[0]!;
    assert.ok(e.kind === "error" && e.statusCode === 503 && e.reason === "capacity", JSON.stringify(e));
    assert.match(e.kind === "error" ? e.message : "", /too large to forward .* > NATS max_payload/);
    assert.equal(fwd.pending, 0);
  });
});
