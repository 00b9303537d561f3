/**
 * The PostgreSQL outage proxy of the scale suite: queries pass through it, `outage(ms)` cuts live connections and
 * refuses new ones for that long, and the same URL works again afterwards. The real server is never touched.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { startPgOutageProxy, type PgOutageProxy } from "../../support/pg-outage-proxy.js";

const base = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  c.on("error", () => {}); // a cut connection also emits 'error' on an idle client
  await c.connect();
  return c;
}

describe("test support: PostgreSQL outage proxy", function () {
  this.timeout(30_000);
  let proxy: PgOutageProxy;
  before(async () => {
    proxy = await startPgOutageProxy();
  });
  after(async () => {
    await proxy?.close();
  });

  it("passes queries through to the real server", async () => {
    const c = await client(proxy.urlFor(base));
    try {
      assert.equal(proxy.openConnections, 1);
      const { rows } = await c.query<{ n: number }>("SELECT 41 + 1 AS n");
      assert.equal(rows[0]!.n, 42);
    } finally {
      await c.end();
    }
  });

  it("cuts live connections, refuses new ones for the outage, and serves again after it", async () => {
    const url = proxy.urlFor(base);
    const live = await client(url);
    const started = Date.now();
    const outage = proxy.outage(600);
    assert.equal(proxy.down, true);
    await assert.rejects(live.query("SELECT 1"));
    assert.equal(proxy.openConnections, 0);
    await assert.rejects(client(url), /ECONNREFUSED/);
    await outage;
    const tookMs = Date.now() - started;
    assert.ok(tookMs >= 600 && tookMs < 1500, `outage lasted ${tookMs} ms`);
    assert.equal(proxy.down, false);
    const again = await client(url);
    try {
      assert.equal((await again.query<{ n: number }>("SELECT 1 AS n")).rows[0]!.n, 1);
    } finally {
      await again.end();
    }
  });

  it("leaves connections made straight to the server alone", async () => {
    const direct = await client(base);
    try {
      await proxy.outage(100);
      assert.equal((await direct.query<{ n: number }>("SELECT 1 AS n")).rows[0]!.n, 1);
    } finally {
      await direct.end();
    }
  });
});
