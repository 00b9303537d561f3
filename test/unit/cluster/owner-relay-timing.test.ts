/**
 * OwnerRelay's timing, as production runs it: relayed events batched and flushed after the messages read together
 * (deferred tasks), and a young forwarded dispatch started without waiting for the owner's turn (start-gate.ts).
 * The relay's protocol (accept, refuse, relay, cancel, loads) is in owner-relay.test.ts.
 */
import assert from "node:assert/strict";
import { encode } from "../../../src/cluster/cluster-messages.js";
import type { OwnerRelay } from "../../../src/cluster/owner-relay.js";
import type { ProviderEvent } from "../../../src/inference/types.js";
import type { ProviderRegistry } from "../../../src/registry/provider-registry.js";
import type { FakeTransport } from "./fake-transport.js";
import { type FakeChannel, WALL_MS, chunk, complete, forwarded, ownerOfP1, subjects } from "./owner-relay-fixtures.js";

describe("OwnerRelay with deferred tasks (as in production: setImmediate)", () => {
  let transport: FakeTransport;
  let p1: FakeChannel;
  let tasks: (() => void)[];
  let relay: OwnerRelay;
  let registry: ProviderRegistry;
  beforeEach(() => {
    tasks = [];
    ({ relay, p1, transport, registry } = ownerOfP1({ defer: (task) => void tasks.push(task) }));
  });
  const runTasks = () => {
    for (const t of tasks.splice(0)) t();
  };

  it("never starts an admitted request whose cancel arrived with it (a dispatch buffered while NATS was away)", () => {
    assert.deepEqual(relay.dispatch(forwarded("r1")), { ok: true });
    assert.equal(p1.dispatched.length, 0, "not sent to the Mac before the messages that came with it");
    assert.equal(registry.get("p1")!.inflight.size, 1, "but its slot is counted at once");
    relay.cancel(encode({ requestId: "r1", providerId: "p1", reason: "dispatch unanswered" }));
    runTasks();
    assert.equal(p1.dispatched.length, 0, "the Mac never receives it");
    assert.equal(registry.get("p1")!.inflight.size, 0);
    assert.equal(relay.running, 0);
  });

  it("tells the requester when the Mac's stream closed before the deferred start", () => {
    assert.deepEqual(relay.dispatch(forwarded("r1")), { ok: true });
    p1.accepts = false;
    runTasks();
    runTasks(); // the flush of the relayed event
    const frames = transport.on(subjects.events("n2")).flatMap((m) => m.frames as { event?: ProviderEvent }[]);
    assert.deepEqual(
      frames.map((f) => f.event?.kind),
      ["disconnected"],
    );
    assert.equal(registry.get("p1")!.inflight.size, 0);
  });

  it("sends each requesting node one message per flush, its requests' events in order", () => {
    assert.deepEqual(relay.dispatch(forwarded("r1")), { ok: true });
    assert.deepEqual(relay.dispatch(forwarded("r2", { from: "n3" })), { ok: true });
    assert.deepEqual(relay.dispatch(forwarded("r3")), { ok: true });
    runTasks();
    assert.equal(p1.dispatched.length, 3);
    p1.emit("r1", chunk("a"));
    p1.emit("r2", chunk("x"));
    p1.emit("r3", chunk("c"));
    p1.emit("r1", complete);
    assert.equal(transport.published.length, 0, "nothing is sent before the flush");
    assert.equal(tasks.length, 1, "one flush is scheduled for the whole turn");
    runTasks();
    const toN2 = transport.on(subjects.events("n2"));
    const toN3 = transport.on(subjects.events("n3"));
    assert.equal(toN2.length, 1);
    assert.equal(toN3.length, 1);
    const frames = (toN2[0]!.frames as { requestId: string; event: ProviderEvent }[]).map((f) => [
      f.requestId,
      f.event.kind,
    ]);
    assert.deepEqual(frames, [
      ["r1", "chunk"],
      ["r3", "chunk"],
      ["r1", "complete"],
    ]);
    p1.emit("r3", complete);
    assert.equal(tasks.length, 1, "the next event schedules the next flush");
  });
});

describe("OwnerRelay starting a young dispatch at once (start-gate.ts)", () => {
  let p1: FakeChannel;
  let turn: (() => void)[];
  let brief: (() => void)[];
  let fresh: boolean;
  let seen: (number | undefined)[];
  let relay: OwnerRelay;
  let transport: FakeTransport;
  beforeEach(() => {
    turn = [];
    brief = [];
    fresh = true;
    seen = [];
    ({ relay, p1, transport } = ownerOfP1({
      defer: (task) => void turn.push(task),
      startsAtOnce: (sentAtMs) => (seen.push(sentAtMs), fresh),
      deferBriefly: (task) => void brief.push(task),
    }));
  });
  const run = (tasks: (() => void)[]) => {
    for (const t of tasks.splice(0)) t();
  };

  it("sends a young dispatch to the Mac after the messages read with it, without waiting the turn", () => {
    assert.deepEqual(relay.dispatch(forwarded("r1", { sentAtMs: WALL_MS - 5 })), { ok: true });
    assert.deepEqual(seen, [WALL_MS - 5], "the gate is asked with the requester's send time");
    assert.equal(p1.dispatched.length, 0, "not within the message's own handler");
    run(brief);
    assert.equal(p1.dispatched.length, 1);
    assert.equal(turn.length, 0, "no turn was asked for");
  });

  it("still never starts a young dispatch whose cancel was read with it", () => {
    relay.dispatch(forwarded("r1", { sentAtMs: WALL_MS }));
    relay.cancel(encode({ requestId: "r1", providerId: "p1", reason: "consumer gone" }));
    run(brief);
    assert.equal(p1.dispatched.length, 0);
    assert.equal(relay.running, 0);
  });

  it("batches relayed events over the brief wait, not the turn", () => {
    relay.dispatch(forwarded("r1", { sentAtMs: WALL_MS }));
    run(brief);
    p1.emit("r1", chunk("a"));
    p1.emit("r1", chunk("b"));
    assert.equal(transport.published.length, 0, "nothing is sent before the flush");
    assert.equal(brief.length, 1, "one flush for the events read together");
    assert.equal(turn.length, 0, "the flush does not wait the loop's turn");
    run(brief);
    const sent = transport.on(subjects.events("n2"));
    assert.equal(sent.length, 1);
    assert.deepEqual(
      (sent[0]!.frames as { event: ProviderEvent }[]).map((f) => f.event.kind),
      ["chunk", "chunk"],
    );
  });

  it("keeps the turn when the gate says no", () => {
    fresh = false;
    relay.dispatch(forwarded("r1", { sentAtMs: WALL_MS - 5_000 }));
    run(brief);
    assert.equal(p1.dispatched.length, 0);
    run(turn);
    assert.equal(p1.dispatched.length, 1);
  });
});
