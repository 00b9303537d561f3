/**
 * connect-es reports two faults of the caller's admin request as `internal`; the admin gate answers them as
 * `invalid_argument`, and leaves every other answer as it was.
 */
import assert from "node:assert/strict";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";

describe("admin request faults", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  before(async () => {
    t = await startTestCoordinator({ macs: [] });
  });
  after(async () => t?.close());
  const call = (method: string, contentType: string, body: Uint8Array | string) =>
    fetch(`${t.baseUrl}/coordinator.admin.v1.AdminService/${method}`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.adminKey}`, "content-type": contentType },
      body,
    });

  it("answers a binary body that does not decode with 400 invalid_argument, not 500", async () => {
    const r = await call("ListProviders", "application/proto", new Uint8Array([0]));
    assert.equal(r.status, 400);
    const body = (await r.json()) as { code: string; message: string };
    assert.equal(body.code, "invalid_argument");
    assert.match(body.message, /^parse binary: /);
  });

  it("answers a gRPC-web envelope flagged compressed without an encoding with grpc-status 3", async () => {
    const r = await call("ListProviders", "application/grpc-web+json", new Uint8Array([0x01, 0, 0, 0, 2, 0x7b, 0x7d]));
    assert.equal(r.status, 200);
    const text = Buffer.from(await r.arrayBuffer()).toString("latin1");
    assert.match(text, /grpc-status: ?3\b/);
    assert.doesNotMatch(text, /grpc-status: ?13\b/);
  });

  it("leaves valid calls and other errors as they were", async () => {
    const ok = await call("ListProviders", "application/json", "{}");
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), {});
    const missing = await call("GetAccount", "application/json", JSON.stringify({ accountId: "acct_nope" }));
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { code: string }).code, "not_found");
  });
});
