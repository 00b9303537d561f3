/**
 * Bodies from strangers (issue 13, item 1): nothing is read before the caller is authorised, a refused upload
 * is not read to its end (the connection closes), admin bodies have their own small limit, and the bytes of
 * bodies held at once are bounded across requests.
 */
import assert from "node:assert/strict";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { jsonOf, jsonOfSize, rawRequest } from "../support/raw-http.js";

const MiB = 1024 * 1024;
const admin = "/coordinator.admin.v1.AdminService";

describe("untrusted uploads", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  let port: number;
  before(async () => {
    t = await startTestCoordinator({ macs: [{}] });
    port = t.coordinator.httpPort;
  });
  after(async () => t?.close());

  describe("consumer routes", () => {
    for (const path of ["/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens"]) {
      it(`answers a wrong key on ${path} with 401 from the headers alone and closes the connection`, async () => {
        // 50 MB declared, nothing sent: a server that read before authenticating would wait for the body.
        const r = await rawRequest(port, {
          path,
          headers: { authorization: "Bearer sk-wrong", "content-type": "application/json", "content-length": 50 * MiB },
        });
        assert.equal(r.status, 401);
        assert.equal(r.headers.connection, "close");
        assert.equal(r.closed, true, "the connection is closed, not kept to read the upload");
      });
    }

    it("refuses an upload larger than MAX_BODY_BYTES with 413 before reading it, and closes the connection", async () => {
      const r = await rawRequest(port, {
        path: "/v1/chat/completions",
        headers: {
          authorization: `Bearer ${t.apiKey}`,
          "content-type": "application/json",
          "content-length": 16 * MiB + 1,
        },
        uploadBytes: 16 * MiB + 1,
      });
      assert.equal(r.status, 413);
      assert.equal(r.headers.connection, "close");
      assert.equal(r.closed, true);
      assert.ok(r.bytesSent < 16 * MiB, `the upload was cut short (${r.bytesSent} bytes sent)`);
      assert.equal((jsonOf(r).error as { type: string }).type, "invalid_request_error");
    });

    it("stops reading a chunked upload at MAX_BODY_BYTES + 1 with 413 and closes the connection", async () => {
      // No Content-Length: the limit is found while reading. Chunked framing, 1 MiB chunks.
      const r = await rawRequest(port, {
        path: "/v1/chat/completions",
        headers: {
          authorization: `Bearer ${t.apiKey}`,
          "content-type": "application/json",
          "transfer-encoding": "chunked",
        },
        onOpen: (s) => {
          const chunk = Buffer.concat([
            Buffer.from(`${(MiB).toString(16)}\r\n`),
            Buffer.alloc(MiB, 0x20),
            Buffer.from("\r\n"),
          ]);
          let sent = 0;
          const pump = () => {
            while (sent < 40 && !s.destroyed) {
              sent++;
              if (!s.write(chunk)) return void s.once("drain", pump);
            }
          };
          pump();
        },
      });
      assert.equal(r.status, 413);
      assert.equal(r.closed, true);
    });

    it("accepts a body of exactly MAX_BODY_BYTES", async () => {
      const body = jsonOfSize({ model: "gpt-oss-20b", messages: [{ role: "user", content: "hi" }] }, 16 * MiB);
      const r = await rawRequest(port, {
        path: "/v1/messages/count_tokens",
        headers: {
          authorization: `Bearer ${t.apiKey}`,
          "content-type": "application/json",
          "content-length": 16 * MiB,
        },
        body,
      });
      assert.equal(r.status, 200, r.body);
    });

    it("answers Expect: 100-continue only once the key is checked: a wrong key never uploads", async () => {
      const bad = await rawRequest(port, {
        path: "/v1/chat/completions",
        headers: {
          authorization: "Bearer sk-wrong",
          "content-type": "application/json",
          "content-length": 10 * MiB,
          expect: "100-continue",
        },
      });
      assert.deepEqual(bad.interim, [], "no 100 Continue for a refused caller");
      assert.equal(bad.status, 401);
      assert.equal(bad.closed, true);

      const body = JSON.stringify({ model: "gpt-oss-20b", max_tokens: 4, messages: [{ role: "user", content: "hi" }] });
      let continued = false;
      const good = await rawRequest(port, {
        path: "/v1/chat/completions",
        headers: {
          authorization: `Bearer ${t.apiKey}`,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          expect: "100-continue",
        },
        onOpen: (s) => {
          s.on("data", (d: Buffer) => {
            if (!continued && d.toString("latin1").startsWith("HTTP/1.1 100")) {
              continued = true;
              s.write(body);
            }
          });
        },
      });
      assert.deepEqual(good.interim, [100]);
      assert.equal(good.status, 200);
    });
  });

  describe("admin routes", () => {
    it("answers a missing or wrong admin key with 401 unauthenticated from the headers alone and closes the connection", async () => {
      for (const authorization of [undefined, "Bearer wrong"]) {
        const r = await rawRequest(port, {
          path: `${admin}/ListProviders`,
          headers: {
            "content-type": "application/json",
            "content-length": 300 * 1_000_000,
            ...(authorization ? { authorization } : {}),
          },
        });
        assert.equal(r.status, 401);
        assert.deepEqual(jsonOf(r), {
          code: "unauthenticated",
          message: "admin key required (Authorization: Bearer $ADMIN_KEY)",
        });
        assert.equal(r.closed, true);
      }
    });

    it("answers gRPC-web callers without the key in their own shape (grpc-status 16)", async () => {
      const r = await rawRequest(port, {
        path: `${admin}/ListProviders`,
        headers: { "content-type": "application/grpc-web+proto", "content-length": 5 },
        body: Buffer.alloc(5),
      });
      assert.equal(r.status, 200);
      assert.equal(r.headers["grpc-status"], "16");
    });

    it("accepts an admin body of exactly ADMIN_MAX_BODY_BYTES and refuses one byte more with resource_exhausted", async () => {
      const auth = { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" };
      const sized = (n: number) => {
        const base = JSON.stringify({ accountId: "" });
        return `{"accountId":"${"a".repeat(n - base.length)}"}`;
      };
      const at = sized(64 * 1024);
      assert.equal(Buffer.byteLength(at), 64 * 1024);
      const ok = await rawRequest(port, {
        path: `${admin}/GetAccount`,
        headers: { ...auth, "content-length": at.length },
        body: at,
      });
      // Read and parsed, not refused for size: the 64 KiB account_id then fails validation (ids are at most 64 characters).
      assert.equal(ok.status, 400, "read and validated, not refused for size");
      assert.equal(jsonOf(ok).code, "invalid_argument");
      assert.match(String(jsonOf(ok).message), /account_id must be at most 64 characters/);

      const over = sized(64 * 1024 + 1);
      const refused = await rawRequest(port, {
        path: `${admin}/GetAccount`,
        headers: { ...auth, "content-length": over.length },
        body: over,
      });
      assert.equal(refused.status, 429);
      assert.equal(jsonOf(refused).code, "resource_exhausted");
      assert.equal(refused.closed, true);

      // Without a Content-Length, Connect's own readMaxBytes stops it.
      const chunked = await rawRequest(port, {
        path: `${admin}/GetAccount`,
        headers: { ...auth, "transfer-encoding": "chunked" },
        body: `${over.length.toString(16)}\r\n${over}\r\n0\r\n\r\n`,
      });
      assert.equal(chunked.status, 429);
      assert.equal(jsonOf(chunked).code, "resource_exhausted");
    });

    it("answers a wrong method on an admin path with 405 and Allow: POST", async () => {
      const r = await rawRequest(port, {
        method: "GET",
        path: `${admin}/ListProviders`,
        headers: { authorization: `Bearer ${t.adminKey}` },
      });
      assert.equal(r.status, 405);
      assert.equal(r.headers.allow, "POST");
    });
  });
});

describe("in-flight body budget", function () {
  this.timeout(30_000);
  const limit = 256 * 1024;
  let t: TestCoordinator;
  before(async () => {
    t = await startTestCoordinator({
      // A Mac that answers the first request after 3 s, holding that request's body for as long.
      macs: [{ failures: { script: [{ kind: "slow_first_token", delayMs: 3_000 }] } }],
      config: { maxBodyBytes: limit, maxInflightBodyBytes: limit },
    });
  });
  after(async () => t?.close());

  /** A count_tokens body of exactly `bytes`. */
  const countBody = (bytes: number) =>
    jsonOfSize({ model: "gpt-oss-20b", messages: [{ role: "user", content: "hi" }] }, bytes);

  it("serves bodies up to MAX_INFLIGHT_BODY_BYTES held at once and refuses one byte more with 503 and Retry-After", async () => {
    const port = t.coordinator.httpPort;
    const auth = { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" };
    const held = JSON.stringify({
      model: "gpt-oss-20b",
      max_tokens: 4,
      messages: [{ role: "user", content: "x".repeat(limit / 2 - 100) }],
    });
    const heldBytes = Buffer.byteLength(held);
    const slow = rawRequest(port, {
      path: "/v1/chat/completions",
      headers: { ...auth, "content-length": heldBytes },
      body: held,
    });
    const until = Date.now() + 5_000;
    while (t.coordinator.dispatcher.inflight === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.equal(t.coordinator.dispatcher.inflight, 1, "the first request is dispatched and holds its body");

    const atLimit = countBody(limit - heldBytes);
    const ok = await rawRequest(port, {
      path: "/v1/messages/count_tokens",
      headers: { ...auth, "content-length": atLimit.length },
      body: atLimit,
    });
    assert.equal(ok.status, 200, ok.body);

    const over = countBody(limit - heldBytes + 1);
    const busy = await rawRequest(port, {
      path: "/v1/messages/count_tokens",
      headers: { ...auth, "content-length": over.length },
      body: over,
    });
    assert.equal(busy.status, 503);
    assert.equal(busy.headers["retry-after"], "1");
    assert.equal(busy.closed, true, "the refused upload is not read");
    assert.deepEqual(jsonOf(busy).type, "error", "Anthropic shape on an Anthropic route");

    // Found while reading, without a Content-Length.
    const chunked = await rawRequest(port, {
      path: "/v1/messages/count_tokens",
      headers: { ...auth, "transfer-encoding": "chunked" },
      body: `${over.length.toString(16)}\r\n${over}\r\n0\r\n\r\n`,
    });
    assert.equal(chunked.status, 503);

    assert.equal((await slow).status, 200);
    // The held body is released with its response: the same request now fits.
    const again = await rawRequest(port, {
      path: "/v1/messages/count_tokens",
      headers: { ...auth, "content-length": over.length },
      body: over,
    });
    assert.equal(again.status, 200);
  });
});
