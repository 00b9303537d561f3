import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { chipProfile } from "../../../../src/tools/fleet/chip-profiles.js";
import { startFleet, type Fleet } from "../../../../src/tools/fleet/fleet.js";
import { SimulatedMac } from "../../../../src/tools/fleet/simulated-mac.js";
import { FakeCoordinator, GOOD_TOKEN } from "./fake-coordinator.js";

/** Polls until `fn` holds. */
async function until(fn: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A TCP listener that accepts connections and never says a word (a SIGSTOPped coordinator, as a client sees it). */
async function silentServer(): Promise<{ address: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    address: `127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe("simulated fleet with several coordinator addresses", () => {
  let coords: FakeCoordinator[] = [];
  let fleet: Fleet | undefined;

  beforeEach(async () => {
    coords = await Promise.all([FakeCoordinator.start(), FakeCoordinator.start(), FakeCoordinator.start()]);
  });
  afterEach(async () => {
    await fleet?.stop();
    fleet = undefined;
    for (const c of coords) c.close();
  });

  const addresses = () => coords.map((c) => c.address);

  it("connects Mac i to address i mod n", async () => {
    fleet = await startFleet({
      coordinator: addresses(),
      token: GOOD_TOKEN,
      count: 7,
      models: ["gpt-oss-20b"],
      instant: true,
      warm: false,
    });
    await fleet.ready();
    assert.deepEqual(
      fleet.macs.map((m) => m.address),
      [0, 1, 2, 0, 1, 2, 0].map((i) => addresses()[i]),
    );
    assert.deepEqual(
      coords.map((c) => c.sessions.length),
      [3, 2, 2],
    );
    assert.deepEqual([...fleet.connectedBy().values()], [3, 2, 2]);
  });

  it("moves a dead coordinator's Macs to the next address in rotation, with the capped backoff", async () => {
    fleet = await startFleet({
      coordinator: addresses(),
      token: GOOD_TOKEN,
      count: 6,
      models: ["gpt-oss-20b"],
      instant: true,
      warm: false,
      reconnectMaxMs: 100,
    });
    await fleet.ready();
    const f = fleet;
    const [a, b, c] = addresses() as [string, string, string];
    const killedAt = Date.now();
    coords[0]!.close();
    await until(() => f.connectedBy().get(b) === 4, 3000, "the Macs of the dead coordinator at the next one");
    // The cap holds the first reconnect to about 100 ms ± 20 % (plus a registration), far below the 250 ms base.
    assert.ok(Date.now() - killedAt < 1500, `re-homed in ${Date.now() - killedAt} ms`);
    assert.deepEqual(Object.fromEntries(f.connectedBy()), { [a]: 0, [b]: 4, [c]: 2 });
    assert.deepEqual(
      f.macs.filter((_, i) => i % 3 === 0).map((m) => [m.address, m.registrations]),
      [
        [b, 2],
        [b, 2],
      ],
    );
  });

  it("skips a dead next address and lands on the first live one", async () => {
    fleet = await startFleet({
      coordinator: addresses(),
      token: GOOD_TOKEN,
      count: 3,
      models: ["gpt-oss-20b"],
      instant: true,
      warm: false,
      reconnectMaxMs: 50,
    });
    await fleet.ready();
    const f = fleet;
    const c = addresses()[2]!;
    coords[1]!.close();
    coords[0]!.close();
    await until(() => f.connectedBy().get(c) === 3, 5000, "every Mac at the one live coordinator");
    assert.ok(f.macs.every((m) => m.state === "registered" && m.address === c));
  });

  it("a Mac with one address keeps reconnecting to it (single-address behaviour)", async () => {
    const mac = new SimulatedMac({
      coordinator: coords[1]!.address,
      token: GOOD_TOKEN,
      serial: "ONE-0",
      chip: chipProfile("m4-max-128")!,
      models: ["gpt-oss-20b"],
      instant: true,
      reconnectMaxMs: 50,
    }).start();
    try {
      await mac.ready();
      mac.dropConnection();
      await until(() => mac.registrations === 2, 3000, "the reconnect");
      assert.equal(mac.address, coords[1]!.address);
      assert.equal(coords[1]!.sessions.length, 2);
    } finally {
      await mac.stop();
    }
  });

  it("gives up on a coordinator that accepts TCP but never answers after registerTimeoutMs, and moves on", async () => {
    const silent = await silentServer();
    const mac = new SimulatedMac({
      coordinator: silent.address,
      coordinators: [silent.address, coords[2]!.address],
      token: GOOD_TOKEN,
      serial: "HUNG-0",
      chip: chipProfile("m4-max-128")!,
      models: ["gpt-oss-20b"],
      instant: true,
      registerTimeoutMs: 300,
      reconnectMaxMs: 50,
    });
    const started = Date.now();
    mac.start();
    try {
      await mac.ready();
      const took = Date.now() - started;
      assert.equal(mac.address, coords[2]!.address);
      assert.ok(took >= 300 && took < 2000, `registered after ${took} ms`);
    } finally {
      await mac.stop();
      await silent.close();
    }
  });

  it("without registerTimeoutMs a silent coordinator holds the Mac (the bound is what moves it)", async () => {
    const silent = await silentServer();
    const mac = new SimulatedMac({
      coordinator: silent.address,
      coordinators: [silent.address, coords[2]!.address],
      token: GOOD_TOKEN,
      serial: "HUNG-1",
      chip: chipProfile("m4-max-128")!,
      models: ["gpt-oss-20b"],
      instant: true,
      reconnectMaxMs: 50,
      keepaliveTimeMs: 60_000,
    }).start();
    try {
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(mac.state, "connecting");
      assert.equal(mac.address, silent.address);
    } finally {
      await mac.stop();
      await silent.close();
    }
  });
});
