import assert from "node:assert/strict";
import { MAX_RELAY_MESSAGE_BYTES, bytesOf, encode } from "../../../src/cluster/cluster-messages.js";
import { OwnerRelay } from "../../../src/cluster/owner-relay.js";
import type { ProviderEvent } from "../../../src/inference/types.js";
import { ProviderRegistry } from "../../../src/registry/provider-registry.js";
import type { PickResult, RouteRequest } from "../../../src/scheduler/types.js";
import { FakeClock } from "../../../src/util/clock.js";
import { MODEL, heartbeat, registration, slot } from "../registry/fixtures.js";
import { FakeTransport } from "./fake-transport.js";
import { FakeChannel, WALL_MS, chunk, complete, forwarded, picked, subjects, traits } from "./owner-relay-fixtures.js";

describe("OwnerRelay", () => {
  let clock: FakeClock;
  let wallMs: number;
  let transport: FakeTransport;
  let registry: ProviderRegistry;
  let channels: Map<string, FakeChannel>;
  let decision: PickResult;
  let routed: [string, RouteRequest][];
  let relay: OwnerRelay;
  let p1: FakeChannel;
  let view: unknown;

  beforeEach(() => {
    clock = new FakeClock();
    wallMs = WALL_MS;
    transport = new FakeTransport();
    registry = new ProviderRegistry();
    registry.add(registration("A"), clock.nowMs(), "p1");
    registry.add(registration("B"), clock.nowMs(), "p2");
    p1 = new FakeChannel("p1");
    channels = new Map([
      ["p1", p1],
      ["p2", new FakeChannel("p2")],
    ]);
    decision = picked();
    routed = [];
    view = undefined;
    relay = new OwnerRelay({
      subjects,
      transport,
      registry,
      local: { channel: (id) => channels.get(id) },
      ownerRoute: (id, req) => {
        routed.push([id, req]);
        return decision;
      },
      clock,
      wallNowMs: () => wallMs,
      viewOf: (id) => (view === undefined ? undefined : { id, view }),
    });
  });

  const inflightOf = (id = "p1") => [...(registry.get(id)?.inflight.values() ?? [])];
  const relayed = (node = "n2") => transport.on(subjects.events(node));

  it("refuses a malformed dispatch", () => {
    for (const data of [bytesOf("{"), bytesOf("[]"), encode({ requestId: "r1" })])
      assert.deepEqual(relay.dispatch(data), { ok: false, reason: "malformed dispatch" });
    assert.equal(routed.length, 0);
  });

  const deadlines: { name: string; wallMs: number; ok: boolean }[] = [
    { name: "before notAfterMs", wallMs: WALL_MS - 1, ok: true },
    { name: "exactly at notAfterMs", wallMs: WALL_MS, ok: true },
    { name: "one ms after notAfterMs", wallMs: WALL_MS + 1, ok: false },
  ];
  for (const c of deadlines)
    it(`${c.ok ? "admits" : "refuses as expired"} a dispatch arriving ${c.name}`, () => {
      wallMs = c.wallMs;
      const answer = relay.dispatch(forwarded("r1"));
      assert.deepEqual(answer, c.ok ? { ok: true } : { ok: false, reason: "expired" });
      assert.equal(p1.dispatched.length, c.ok ? 1 : 0);
      assert.equal(inflightOf().length, c.ok ? 1 : 0);
    });

  it("refuses a dispatch whose traits lack the prompt estimate instead of counting NaN tokens", () => {
    const { estimatedPromptTokens: _p, ...partial } = traits;
    assert.deepEqual(relay.dispatch(forwarded("r1", { traits: partial })), { ok: false, reason: "malformed dispatch" });
    assert.equal(inflightOf().length, 0);
  });

  it("refuses a Mac it does not hold: unknown, mirrored from another owner, or not in the registry", () => {
    registry.mirror("p3", registration("C"), { ...heartbeat([]), pool: undefined, inflight: [], pendingLoads: [] }, 0);
    channels.set("p4", new FakeChannel("p4"));
    for (const providerId of ["nope", "p3", "p4"])
      assert.deepEqual(relay.dispatch(forwarded("r1", { providerId })), { ok: false, reason: "not connected here" });
    assert.equal(routed.length, 0);
  });

  const refusals: { decision: PickResult; reason: string }[] = [
    { decision: { kind: "queue", reason: "all_busy", retryAfterMs: 1000 }, reason: "all_busy" },
    { decision: { kind: "queue", reason: "loading", retryAfterMs: 1000 }, reason: "loading" },
    { decision: { kind: "reject", code: "model_unavailable", message: "x" }, reason: "model_unavailable" },
  ];
  for (const c of refusals)
    it(`refuses with the owner's ${c.decision.kind} reason ${c.reason} and adds nothing in flight`, () => {
      decision = c.decision;
      assert.deepEqual(relay.dispatch(forwarded("r1")), { ok: false, reason: c.reason });
      assert.equal(inflightOf().length, 0);
      assert.equal(p1.dispatched.length, 0);
      assert.equal(relay.running, 0);
    });

  it("sends its view of the Mac with a refusal of the owner check, and only then", () => {
    view = "current";
    decision = { kind: "queue", reason: "all_busy", retryAfterMs: 1000 };
    assert.deepEqual(relay.dispatch(forwarded("r1")), {
      ok: false,
      reason: "all_busy",
      snapshot: { id: "p1", view: "current" },
    });
    wallMs = WALL_MS + 1;
    assert.deepEqual(relay.dispatch(forwarded("r1")), { ok: false, reason: "expired" });
    wallMs = WALL_MS;
    decision = picked();
    assert.deepEqual(relay.dispatch(forwarded("r1")), { ok: true });
  });

  it("asks the owner check with the forwarded request's constraints", () => {
    relay.dispatch(forwarded("r1", { shape: "tools", callerAccountId: "c", pinnedAccountId: "acct" }));
    assert.equal(routed.length, 1);
    const [id, req] = routed[0]!;
    assert.equal(id, "p1");
    assert.equal(req.requestId, "r1");
    assert.equal(req.model, MODEL);
    assert.deepEqual(req.traits, traits);
    assert.equal(req.shape, "tools");
    assert.equal(req.exclude.size, 0);
    assert.equal(req.callerAccountId, "c");
    assert.equal(req.pinnedAccountId, "acct");
  });

  it("admits: counts the request with the decision's reservation and sends it to the Mac", () => {
    clock.advance(250);
    assert.deepEqual(relay.dispatch(forwarded("r1", { traceContext: { traceparent: "00-t" } })), { ok: true });
    assert.deepEqual(inflightOf(), [
      {
        requestId: "r1",
        model: MODEL,
        reservedTokens: 1000,
        usedTokens: 40,
        remainingOutputTokens: 960,
        promptTokens: 40,
        startedAtMs: clock.nowMs(),
        seenByProvider: false,
      },
    ]);
    assert.equal(registry.get("p1")?.pendingLoads.size, 0, "warm: no load implied");
    assert.equal(p1.dispatched.length, 1);
    const { req } = p1.dispatched[0]!;
    assert.equal(req.requestId, "r1");
    assert.equal(req.model, MODEL);
    assert.equal(new TextDecoder().decode(req.bodyJson), '{"messages":[]}');
    assert.deepEqual(req.traits, traits);
    assert.deepEqual(req.traceContext, { traceparent: "00-t" });
    assert.equal(relay.running, 1);
  });

  it("marks the model loading on a cold admission", () => {
    decision = picked({ cold: true });
    relay.dispatch(forwarded("r1"));
    assert.deepEqual([...(registry.get("p1")?.pendingLoads.keys() ?? [])], [MODEL]);
  });

  it("refuses a second dispatch of a request already running", () => {
    relay.dispatch(forwarded("r1"));
    assert.deepEqual(relay.dispatch(forwarded("r1")), { ok: false, reason: "already running" });
    assert.equal(p1.dispatched.length, 1);
    assert.equal(inflightOf().length, 1);
  });

  it("relays the Mac's events in order, marks it started, counts streamed tokens and ends on the terminal event", () => {
    relay.dispatch(forwarded("r1"));
    const entry = () => registry.get("p1")?.inflight.get("r1");
    assert.equal(entry()?.startedByProvider, undefined);
    p1.emit("r1", { kind: "accepted" });
    assert.equal(entry()?.startedByProvider, true);
    p1.emit("r1", chunk("abcdefgh"));
    assert.equal(entry()?.usedTokens, 42, "8 characters = 2 tokens on top of the prompt");
    assert.equal(entry()?.remainingOutputTokens, 958);
    p1.emit("r1", chunk("xyz"));
    assert.equal(entry()?.usedTokens, 43);
    p1.emit("r1", complete);
    assert.equal(entry(), undefined);
    assert.equal(relay.running, 0);
    p1.emit("r1", chunk("after the end"));
    assert.deepEqual(
      relayed().map((m) => m.frames),
      [{ kind: "accepted" }, chunk("abcdefgh"), chunk("xyz"), complete].map((event) => [
        { requestId: "r1", providerId: "p1", event },
      ]),
    );
  });

  for (const terminal of [
    { kind: "error", statusCode: 500, message: "boom", reason: "internal" },
    { kind: "disconnected", message: "stream ended" },
  ] as ProviderEvent[])
    it(`ends the relay on ${terminal.kind}`, () => {
      relay.dispatch(forwarded("r1"));
      p1.emit("r1", terminal);
      assert.equal(inflightOf().length, 0);
      assert.equal(relay.running, 0);
      assert.deepEqual(relayed()[0]?.frames, [{ requestId: "r1", providerId: "p1", event: terminal }]);
    });

  it("refuses when the Mac's stream is closed and leaves nothing in flight", () => {
    p1.accepts = false;
    assert.deepEqual(relay.dispatch(forwarded("r1")), { ok: false, reason: "stream closed" });
    assert.equal(inflightOf().length, 0);
    assert.equal(relay.running, 0);
    p1.accepts = true;
    assert.deepEqual(relay.dispatch(forwarded("r1")), { ok: true }, "not left marked as running");
  });

  it("stops a cancelled request at the Mac, stops counting it and relays nothing more", () => {
    relay.dispatch(forwarded("r1"));
    relay.dispatch(forwarded("r2"));
    relay.cancel(encode({ requestId: "r1", providerId: "p1", reason: "consumer gone" }));
    assert.deepEqual(p1.cancelled, [["r1", "consumer gone"]]);
    assert.deepEqual(
      inflightOf().map((r) => r.requestId),
      ["r2"],
    );
    assert.equal(relay.running, 1);
    p1.emit("r1", chunk("late"));
    assert.deepEqual(relayed(), []);
    relay.cancel(encode({ requestId: "r1", providerId: "p1", reason: "again" }));
    relay.cancel(bytesOf("{"));
    relay.cancel(encode({ requestId: "r2", providerId: "p1" }));
    assert.deepEqual(p1.cancelled, [["r1", "consumer gone"]], "unknown or malformed cancels do nothing");
  });

  it("beats once per requesting node, listing its running requests", () => {
    relay.beat();
    assert.deepEqual(transport.published, [], "nothing running: no beats");
    relay.dispatch(forwarded("r1"));
    relay.dispatch(forwarded("r2"));
    relay.dispatch(forwarded("r3", { from: "n3" }));
    relay.dispatch(forwarded("r4", { providerId: "p2" }));
    relay.beat();
    assert.equal(transport.published.length, 2);
    assert.deepEqual(relayed("n2"), [
      {
        frames: [
          { requestId: "r1", providerId: "p1" },
          { requestId: "r2", providerId: "p1" },
          { requestId: "r4", providerId: "p2" },
        ],
      },
    ]);
    assert.deepEqual(relayed("n3"), [{ frames: [{ requestId: "r3", providerId: "p1" }] }]);
  });

  it("stops only the dead node's requests at the Macs", () => {
    relay.dispatch(forwarded("r1"));
    relay.dispatch(forwarded("r2", { from: "n3" }));
    relay.dispatch(forwarded("r3", { providerId: "p2" }));
    assert.equal(relay.nodeDied("n2"), 2);
    assert.deepEqual(p1.cancelled, [["r1", "requesting coordinator n2 is gone"]]);
    assert.deepEqual(channels.get("p2")?.cancelled, [["r3", "requesting coordinator n2 is gone"]]);
    assert.deepEqual(
      inflightOf().map((r) => r.requestId),
      ["r2"],
    );
    assert.equal(inflightOf("p2").length, 0);
    assert.equal(relay.running, 1);
    assert.equal(relay.nodeDied("n2"), 0);
  });

  it("forwards a load to the Mac once, marking it pending", () => {
    relay.load(encode({ providerId: "p1", model: MODEL }));
    relay.load(encode({ providerId: "p1", model: MODEL }));
    assert.deepEqual(p1.loads, [MODEL]);
    assert.deepEqual([...(registry.get("p1")?.pendingLoads.keys() ?? [])], [MODEL]);
  });

  it("refuses a dispatch whose requesting node is not a subject token (events would go to another subject)", () => {
    for (const from of ["n2 x", "n2.events", "*", ">", ""])
      assert.deepEqual(relay.dispatch(forwarded("r1", { from })), { ok: false, reason: "malformed dispatch" }, from);
    assert.equal(routed.length, 0);
    assert.equal(relay.dispatch(forwarded("r1", { from: "n2_b-3" })).ok, true);
  });

  it("splits relayed frames into messages under the NATS limit, in order", () => {
    relay.dispatch(forwarded("r1"));
    relay.dispatch(forwarded("r2"));
    // No deferral in this fixture: each event is published at once (a large chunk as several frames, in order);
    // the beat batches every running request.
    const big = "x\u0001".repeat(150_000);
    p1.emit("r1", chunk(big));
    p1.emit("r2", chunk(big));
    for (const m of transport.sizes) assert.ok(m <= MAX_RELAY_MESSAGE_BYTES, `${m} bytes`);
    const text = (id: string) =>
      transport.published
        .flatMap((m) => m.body.frames as { requestId: string; event: { deltas: { text: string }[] } }[])
        .filter((f) => f.requestId === id)
        .flatMap((f) => f.event.deltas.map((d) => d.text))
        .join("");
    assert.equal(text("r1"), big);
    assert.equal(text("r2"), big);
    for (let i = 3; i < 20_000; i++) relay.dispatch(forwarded(`r${i}`));
    transport.published.length = 0;
    transport.sizes.length = 0;
    relay.beat();
    assert.ok(transport.published.length >= 2, `${transport.published.length} beat messages`);
    for (const m of transport.sizes) assert.ok(m <= MAX_RELAY_MESSAGE_BYTES, `${m} bytes`);
    const ids = transport.published.flatMap((m) => (m.body.frames as { requestId: string }[]).map((f) => f.requestId));
    assert.equal(ids.length, relay.running);
    assert.deepEqual(ids.slice(0, 3), ["r1", "r2", "r3"]);
  });

  const noLoads: { name: string; prepare: () => void; data: Uint8Array }[] = [
    {
      name: "the model is resident",
      prepare: () => registry.applyHeartbeat("p1", heartbeat([slot({ state: "idle" })]), 0),
      data: encode({ providerId: "p1", model: MODEL }),
    },
    {
      name: "the model is already loading",
      prepare: () => registry.markPendingLoad("p1", MODEL, 0),
      data: encode({ providerId: "p1", model: MODEL }),
    },
    { name: "the Mac is unknown", prepare: () => {}, data: encode({ providerId: "nope", model: MODEL }) },
    {
      name: "the Mac is not held here",
      prepare: () => channels.delete("p1"),
      data: encode({ providerId: "p1", model: MODEL }),
    },
    { name: "the message is malformed", prepare: () => {}, data: encode({ providerId: "p1" }) },
    {
      name: "the Mac did not advertise the model",
      prepare: () => {},
      data: encode({ providerId: "p1", model: "gemma" }),
    },
    {
      name: "the model is not a model id",
      prepare: () => {},
      data: encode({ providerId: "p1", model: "x".repeat(1_000) }),
    },
  ];
  for (const c of noLoads)
    it(`forwards no load when ${c.name}`, () => {
      c.prepare();
      relay.load(c.data);
      assert.deepEqual(p1.loads, []);
    });
});
