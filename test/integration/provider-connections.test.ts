/**
 * What a stranger can hold open on the provider port before registering anything: a connection that never opens
 * a stream is closed after PROVIDER_IDLE_CONNECTION_MS (an HTTP/2 client answers keepalive pings, so keepalive
 * alone never closed it), and past PROVIDER_MAX_CONNECTIONS in all or PROVIDER_MAX_CONNECTIONS_PER_ADDRESS from one
 * address a new connection is closed at once, with one warn line for the operator. Registered Macs, whose stream
 * stays open, are never idle. One connection carries at most PROVIDER_MAX_STREAMS_PER_CONNECTION streams at once.
 */
import assert from "node:assert/strict";
import { connect as connectH2 } from "node:http2";
import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { PROVIDER_MAX_STREAMS_PER_CONNECTION } from "../../src/protocol/grpc-server.js";
import { createLogger } from "../../src/util/logger.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { eventually } from "../support/http.js";
import { closedWithin, openSocket } from "../support/sockets.js";

describe("provider port connection bounds", function () {
  this.timeout(60_000);

  describe("idle connections", () => {
    let t: TestCoordinator;
    before(async () => {
      t = await startTestCoordinator({ config: { providerIdleConnectionMs: 600 } });
    });
    after(async () => t?.close());

    it("closes an HTTP/2 connection that never opens a stream, and keeps registered Macs", async () => {
      const session = connectH2(`http://127.0.0.1:${t.coordinator.grpcPort}`);
      session.on("error", () => {});
      await new Promise<void>((resolve) => session.once("remoteSettings", () => resolve()));
      const closedAfter = await closedWithin((cb) => session.once("close", cb), 5_000);
      assert.ok(closedAfter !== undefined, "the idle connection is still open after 5 s");
      assert.ok(closedAfter >= 500, `closed after ${closedAfter} ms, before the idle bound`);
      await sleep(700);
      assert.equal(t.coordinator.registry.size, 2, "both Macs stay registered past the idle bound");
    });
  });

  for (const bound of [
    {
      name: "PROVIDER_MAX_CONNECTIONS",
      config: { providerMaxConnections: 3 },
      msg: "provider connections refused: connection limit reached",
    },
    {
      name: "PROVIDER_MAX_CONNECTIONS_PER_ADDRESS",
      config: { providerMaxConnectionsPerAddress: 3 },
      msg: "provider connections refused: per-address limit reached",
    },
  ]) {
    describe(bound.name, () => {
      let t: TestCoordinator;
      const lines: { msg: string; setting?: string; limit?: number; address?: string }[] = [];
      const sockets: Socket[] = [];
      before(async () => {
        t = await startTestCoordinator({
          macs: [],
          config: bound.config,
          logger: createLogger("warn", (l) => lines.push(JSON.parse(l))),
        });
      });
      after(async () => {
        for (const s of sockets) s.destroy();
        await t?.close();
      });

      const open = () => openSocket(t.coordinator.grpcPort, sockets);

      it("holds 3 connections and closes the next ones at once, with one line for the operator", async () => {
        const held = [await open(), await open(), await open()];
        const extra = [await open(), await open()];
        for (const s of extra) {
          const closedAfter = await closedWithin((cb) => s.once("close", cb), 2_000);
          assert.ok(closedAfter !== undefined, "a connection past the limit is still open");
        }
        await sleep(100);
        for (const s of held) assert.equal(s.destroyed, false, "a connection within the limit was closed");
        const refused = lines.filter((l) => l.msg === bound.msg);
        assert.equal(refused.length, 1, "one line, not one per connection");
        assert.equal(refused[0]!.limit, 3);
        assert.equal(refused[0]!.setting, bound.name, "the line names the setting to raise");
        assert.equal(refused[0]!.address, "127.0.0.1");

        // Room again once one is closed.
        held[0]!.destroy();
        await sleep(100);
        const next = await open();
        assert.equal(await closedWithin((cb) => next.once("close", cb), 500), undefined, "refused with room free");
      });
    });
  }
});

describe("provider port streams per connection", function () {
  this.timeout(60_000);
  let t: TestCoordinator;
  before(async () => {
    t = await startTestCoordinator({ macs: [] });
  });
  after(async () => t?.close());

  it(`advertises ${PROVIDER_MAX_STREAMS_PER_CONNECTION} concurrent streams per connection, and a client opening more is held to it`, async () => {
    const session = connectH2(`http://127.0.0.1:${t.coordinator.grpcPort}`);
    session.on("error", () => {});
    try {
      const settings = await new Promise<{ maxConcurrentStreams?: number }>((resolve) =>
        session.once("remoteSettings", resolve),
      );
      assert.equal(settings.maxConcurrentStreams, PROVIDER_MAX_STREAMS_PER_CONNECTION);
      // Connect streams that never send a Register, one more than the bound: each is a session the coordinator
      // holds until its handshake timeout. The client's HTTP/2 layer holds the last one back.
      for (let k = 0; k <= PROVIDER_MAX_STREAMS_PER_CONNECTION; k++) {
        const s = session.request({
          ":method": "POST",
          ":path": "/coordinator.provider.v1.ProviderService/Connect",
          "content-type": "application/grpc",
          te: "trailers",
        });
        s.on("error", () => {});
      }
      await eventually(
        () => t.coordinator.providers.handshakingCount === PROVIDER_MAX_STREAMS_PER_CONNECTION,
        10_000,
        "the bound's worth of streams reach the coordinator",
      );
      await sleep(500);
      assert.equal(t.coordinator.providers.handshakingCount, PROVIDER_MAX_STREAMS_PER_CONNECTION);
    } finally {
      session.destroy();
    }
  });
});
