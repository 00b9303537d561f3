/**
 * ConsumerServer's connection timeouts over real loopback sockets (issue 13: slow or idle clients stayed
 * connected past 60 s). Timeouts are small here; each assertion leaves seconds of slack for a busy machine.
 */
import assert from "node:assert/strict";
import type { IncomingMessage, ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import { ConsumerServer, type ConsumerServerOptions } from "../../../src/http/consumer-server.js";
import { systemClock } from "../../../src/util/clock.js";

// The idle timeout is longer than the headers timeout plus its check period, so a slow header gets its 408.
const options: ConsumerServerOptions = {
  headersTimeoutMs: 400,
  requestTimeoutMs: 1_500,
  keepAliveTimeoutMs: 300,
  idleSocketTimeoutMs: 900,
  closeLingerMs: 300,
};

/** Resolves with ms until the server closed the socket, and everything it sent. */
function untilClosed(socket: Socket, limitMs = 8_000): Promise<{ ms: number; data: string }> {
  const started = performance.now();
  let data = "";
  socket.on("data", (d: Buffer) => (data += d.toString("latin1")));
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error(`still open after ${limitMs} ms; got ${JSON.stringify(data.slice(0, 200))}`)),
      limitMs,
    );
    socket.on("error", () => undefined);
    socket.once("close", () => {
      clearTimeout(t);
      resolve({ ms: performance.now() - started, data });
    });
  });
}

describe("ConsumerServer timeouts", function () {
  this.timeout(20_000);
  let server: ConsumerServer;
  let port: number;
  let handler: (req: IncomingMessage, res: ServerResponse) => void;
  beforeEach(async () => {
    handler = (_req, res) => res.end("ok");
    server = new ConsumerServer((req, res) => handler(req, res), systemClock, options);
    port = await server.listen(0, "127.0.0.1", 511);
  });
  afterEach(async () => {
    server.closeAllConnections();
    await server.stopListening();
  });
  const open = () => connect(port, "127.0.0.1");

  it("closes a connection that never finishes its headers with 408 (headers timeout)", async () => {
    const s = open();
    s.write("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n");
    const r = await untilClosed(s);
    assert.match(r.data, /^HTTP\/1\.1 408/);
    assert.ok(r.ms < options.headersTimeoutMs + 2_000, `closed after ${r.ms} ms`);
  });

  it("closes a connection that sends nothing at all", async () => {
    const r = await untilClosed(open());
    assert.ok(r.ms < options.headersTimeoutMs + 2_000, `closed after ${r.ms} ms`);
  });

  it("closes a request whose body trickles in past the request timeout with 408", async () => {
    handler = (req, res) => {
      req.resume();
      req.on("end", () => res.end("ok"));
    };
    const s = open();
    s.write("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n");
    // A byte every 100 ms keeps the socket busy (the idle timeout never fires), but the request never ends.
    const drip = setInterval(() => s.write("x"), 100);
    try {
      const r = await untilClosed(s);
      assert.match(r.data, /^HTTP\/1\.1 408/);
      assert.ok(
        r.ms >= options.requestTimeoutMs - 100 && r.ms < options.requestTimeoutMs + 2_000,
        `closed after ${r.ms} ms`,
      );
    } finally {
      clearInterval(drip);
    }
  });

  it("closes a request whose body stops arriving once the socket is idle", async () => {
    handler = (req, res) => {
      req.resume();
      req.on("end", () => res.end("ok"));
    };
    const s = open();
    s.write("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\nxx");
    const r = await untilClosed(s);
    assert.ok(r.ms < options.requestTimeoutMs, `cut by the idle timeout (${r.ms} ms), before the request timeout`);
  });

  it("closes an idle keep-alive connection after the keep-alive timeout", async () => {
    const s = open();
    s.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    const r = await untilClosed(s);
    assert.match(r.data, /^HTTP\/1\.1 200/);
    // node:http adds 1 s to the advertised keep-alive timeout before it closes.
    assert.ok(r.ms < options.keepAliveTimeoutMs + 1_000 + 2_000, `closed after ${r.ms} ms`);
  });

  it("keeps a request whose answer takes longer than every timeout (the silence is ours)", async () => {
    handler = (_req, res) => setTimeout(() => res.end("late but whole"), options.requestTimeoutMs + 500);
    const s = open();
    s.write("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    const r = await untilClosed(s);
    assert.match(r.data, /^HTTP\/1\.1 200[\s\S]*late but whole$/);
  });

  it("keeps a stream whose chunks are further apart than the idle timeout", async () => {
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      let n = 0;
      const tick = () => {
        res.write(`data: ${n}\n\n`);
        if (++n === 3) return void res.end("data: [DONE]\n\n");
        setTimeout(tick, options.idleSocketTimeoutMs + 300);
      };
      tick();
    };
    const s = open();
    s.write("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    const r = await untilClosed(s);
    assert.match(r.data, /data: 2\n\n[\s\S]*data: \[DONE\]/);
  });

  it("cuts a response the client stopped reading once its send buffer stays full", async () => {
    let finished = false;
    const cut = new Promise<number>((resolve) => {
      handler = (_req, res) => {
        const started = performance.now();
        res.once("close", () => resolve(performance.now() - started));
        res.writeHead(200, { "content-type": "application/octet-stream" });
        const chunk = Buffer.alloc(1024 * 1024);
        let written = 0;
        // Bounded by backpressure: write while the socket takes it, up to 256 MiB.
        const pump = () => {
          while (written < 256) {
            written++;
            if (!res.write(chunk)) return void res.once("drain", pump);
          }
          finished = true;
          res.end();
        };
        pump();
      };
    });
    const s = open();
    s.on("error", () => undefined);
    s.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    s.pause(); // never read (a paused socket does not notice the close either: the server side is watched)
    const ms = await cut;
    s.destroy();
    assert.equal(finished, false, "the server gave up instead of buffering the whole response");
    assert.ok(ms < options.idleSocketTimeoutMs + 3_000, `cut after ${ms} ms`);
  });
});
