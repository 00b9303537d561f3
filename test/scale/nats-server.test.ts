/**
 * The private nats-server harness the scale suite stands on: JetStream on, a restart on the same port that
 * clients ride through, and the lowered ping interval that cuts a frozen client in seconds.
 */
import assert from "node:assert/strict";
import { connect as tcpConnect } from "node:net";
import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { startNatsServer, type NatsServer } from "../support/nats-server.js";

describe("test support: private nats-server", function () {
  this.timeout(60_000);
  let nats: NatsServer;
  before(async () => {
    nats = await startNatsServer({ pingIntervalS: 1, pingMax: 2 });
  });
  after(async () => {
    await nats?.close();
  });

  it("serves core NATS and JetStream KV on its own port", async () => {
    assert.notEqual(nats.port, 4222);
    const nc = await connect({ servers: nats.url });
    try {
      const sub = nc.subscribe("t.echo", { max: 1 });
      const got = (async () => {
        for await (const m of sub) return m.string();
        return undefined;
      })();
      nc.publish("t.echo", "hello");
      assert.equal(await got, "hello");
      const kv = await new Kvm(nc).create(`t_${process.pid}`, { storage: StorageType.Memory });
      await kv.put("k", "v");
      assert.equal((await kv.get("k"))?.string(), "v");
      assert.ok((await (await jetstreamManager(nc)).getAccountInfo()).streams >= 1);
    } finally {
      await nc.close();
    }
  });

  it("restarts on the same port after stop(), and a client reconnects by itself", async () => {
    const nc = await connect({ servers: nats.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    try {
      let reconnected = false;
      void (async () => {
        for await (const s of nc.status()) if (s.type === "reconnect") reconnected = true;
      })();
      await nats.stop();
      await assert.rejects(connect({ servers: nats.url, reconnect: false, timeout: 300 }));
      await nats.start();
      const until = Date.now() + 10_000;
      while (!reconnected && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      assert.ok(reconnected, "the client reconnected to the restarted server");
      assert.ok((await nc.request("$JS.API.INFO", "", { timeout: 2000 })).data.length > 0);
    } finally {
      await nc.close();
    }
  });

  it("cuts a client that stops answering pings after about ping_interval × ping_max", async () => {
    // A raw client that says CONNECT and then never answers a PING: what a SIGSTOPped coordinator looks like.
    const sock = tcpConnect(nats.port, "127.0.0.1");
    sock.on("error", () => {});
    let pings = 0;
    sock.on("data", (d: Buffer) => {
      pings += (d.toString().match(/PING\r\n/g) ?? []).length;
    });
    await new Promise<void>((r) => sock.once("connect", () => r()));
    sock.write('CONNECT {"verbose":false,"pedantic":false}\r\n');
    const started = Date.now();
    await new Promise<void>((r) => sock.once("close", () => r()));
    const tookMs = Date.now() - started;
    // 1 s interval, 2 unanswered: cut at the third tick, 2-4 s; the default (2 min) would never get here.
    assert.ok(tookMs >= 1500 && tookMs <= 6000, `cut after ${tookMs} ms`);
    assert.ok(pings >= 2, `${pings} pings went unanswered`);
  });

  it("kill() ends the server at once", async () => {
    await nats.kill();
    await assert.rejects(connect({ servers: nats.url, reconnect: false, timeout: 300 }));
    await nats.start();
    const nc = await connect({ servers: nats.url });
    await nc.close();
  });
});
