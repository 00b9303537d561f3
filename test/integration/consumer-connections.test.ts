/**
 * What a stranger can hold open on the consumer port: past HTTP_MAX_CONNECTIONS a new connection is closed at once,
 * with one warn line for the operator, and served again once a place is free. At start-up, one warn line when the
 * two ports' connection bounds do not fit in the process's open-file limit.
 */
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger } from "../../src/util/logger.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { closedWithin, openSocket } from "../support/sockets.js";

const PROVIDER_MAX = 20_000;

describe("consumer port connection bound (HTTP_MAX_CONNECTIONS)", function () {
  this.timeout(60_000);
  let t: TestCoordinator;
  const lines: { msg: string; setting?: string; limit?: number; address?: string; open_file_limit?: number }[] = [];
  const sockets: Socket[] = [];
  before(async () => {
    t = await startTestCoordinator({
      macs: [],
      config: { httpMaxConnections: 3, providerMaxConnections: PROVIDER_MAX },
      // 20,003 connections and the reserve fit in 21,027 descriptors: no start-up line.
      openFileLimit: PROVIDER_MAX + 3 + 1_024,
      logger: createLogger("warn", (l) => lines.push(JSON.parse(l))),
    });
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await t?.close();
  });

  const open = () => openSocket(t.coordinator.httpPort, sockets);

  it("holds 3 connections and closes the next ones at once, with one line for the operator; serves again with room", async () => {
    const held = [await open(), await open(), await open()];
    const extra = [await open(), await open()];
    for (const s of extra)
      assert.ok(
        (await closedWithin((cb) => s.once("close", cb), 2_000)) !== undefined,
        "a connection past the limit is open",
      );
    await sleep(100);
    for (const s of held) assert.equal(s.destroyed, false, "a connection within the limit was closed");
    const refused = lines.filter((l) => l.msg === "consumer connections refused: connection limit reached");
    assert.equal(refused.length, 1, "one line, not one per connection");
    assert.equal(refused[0]!.setting, "HTTP_MAX_CONNECTIONS", "the line names the setting to raise");
    assert.equal(refused[0]!.limit, 3);
    assert.equal(refused[0]!.address, "127.0.0.1");

    // A place frees: a real request is served.
    held[0]!.destroy();
    await sleep(100);
    const res = await fetch(`${t.apiBase}/models`, { headers: { authorization: `Bearer ${t.apiKey}` } });
    assert.equal(res.status, 200);
  });

  it("says nothing at start-up when both ports' bounds and the reserve fit in the open-file limit", () => {
    assert.deepEqual(
      lines.filter((l) => l.msg === "connection bounds exceed the open-file limit"),
      [],
    );
  });

  it("warns once at start-up when they do not, one descriptor short", async () => {
    const startup: typeof lines = [];
    const short = await startTestCoordinator({
      macs: [],
      config: { httpMaxConnections: 3, providerMaxConnections: PROVIDER_MAX },
      openFileLimit: PROVIDER_MAX + 3 + 1_024 - 1,
      logger: createLogger("warn", (l) => startup.push(JSON.parse(l))),
    });
    await short.close();
    const warned = startup.filter((l) => l.msg === "connection bounds exceed the open-file limit");
    assert.equal(warned.length, 1);
    assert.equal(warned[0]!.open_file_limit, PROVIDER_MAX + 3 + 1_024 - 1);
  });
});
