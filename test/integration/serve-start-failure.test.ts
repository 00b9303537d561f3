/**
 * `coordinator serve` on a port that is already taken: a one-line error and exit 1, promptly, not a stack trace
 * and a process kept alive by what it had already started (the failure a walkthrough found). And `serve` and `demo`
 * refuse an ADMIN_KEY shorter than MIN_ADMIN_KEY_CHARS before starting anything.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { MIN_ADMIN_KEY_CHARS } from "../../src/config/config.js";
import { freePorts, runCoordinatorCli } from "../support/coordinator-process.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";

describe("coordinator serve: a port already in use", function () {
  this.timeout(30_000);
  let testDb: TestDatabase;
  let blocker: ReturnType<typeof createServer> | undefined;
  before(async () => {
    testDb = await createTestDatabase();
  });
  afterEach(async () => {
    await new Promise((r) => blocker?.close(r));
  });
  after(async () => testDb?.close());

  for (const which of ["http", "grpc"] as const) {
    it(`exits 1 within seconds with one line naming the busy ${which} port`, async () => {
      const [httpPort, grpcPort] = (await freePorts(2)) as [number, number];
      const busy = which === "http" ? httpPort : grpcPort;
      const b = (blocker = createServer());
      await new Promise<void>((r) => b.listen(busy, "127.0.0.1", r));
      const started = Date.now();
      const r = await runCoordinatorCli(
        [
          "serve",
          "--database-url",
          testDb.url,
          "--host",
          "127.0.0.1",
          "--http-port",
          String(httpPort),
          "--grpc-port",
          String(grpcPort),
        ],
        {
          ADMIN_KEY: "admin-test-0123456789abcdef",
          LOG_LEVEL: "error",
          OTEL_EXPORTER_OTLP_ENDPOINT: "",
          DD_AGENT_HOST: "",
        },
      );
      assert.equal(r.code, 1, r.stderr);
      assert.ok(Date.now() - started < 15_000, `exited after ${Date.now() - started} ms`);
      const lines = r.stderr.split("\n").filter((l) => l.startsWith("coordinator:"));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, new RegExp(`EADDRINUSE.*:${busy}.*choose another port`));
      assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
    });
  }
});

describe("coordinator serve and demo: a weak ADMIN_KEY", function () {
  this.timeout(30_000);
  for (const command of ["serve", "demo"]) {
    it(`${command} refuses a key of ${MIN_ADMIN_KEY_CHARS - 1} characters at once, naming the setting`, async () => {
      const r = await runCoordinatorCli([command, "--database-url", "postgres://unused.invalid/x"], {
        ADMIN_KEY: "k".repeat(MIN_ADMIN_KEY_CHARS - 1),
        LOG_LEVEL: "error",
        OTEL_EXPORTER_OTLP_ENDPOINT: "",
        DD_AGENT_HOST: "",
      });
      assert.notEqual(r.code, 0, r.stderr);
      assert.match(r.stderr, /ADMIN_KEY must be at least 24 characters/);
      assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
    });
  }
});
