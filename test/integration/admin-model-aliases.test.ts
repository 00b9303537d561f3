/**
 * Model aliases through the admin API (issue 14, item 1): `SetModelAlias` / `ListModelAliases` /
 * `DeleteModelAlias` persist in PostgreSQL, take effect in the coordinator's alias book at once, are validated
 * (model ids, alias ≠ build ≠ previous build), and are bounded by MAX_MODEL_ALIASES, races included.
 */
import assert from "node:assert/strict";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService } from "../../gen/coordinator/admin/v1/admin_pb.js";
import { loadConfig } from "../../src/config/config.js";
import { startCoordinator } from "../../src/coordinator.js";
import { MAX_MODEL_ALIASES } from "../../src/ledger/model-alias-store.js";
import { silentLogger } from "../../src/util/logger.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";

describe("model aliases through the admin API", function () {
  this.timeout(60_000);
  let t: TestCoordinator;
  let admin: Client<typeof AdminService>;
  before(async () => {
    t = await startTestCoordinator({ macs: [] });
    admin = createClient(
      AdminService,
      createConnectTransport({
        baseUrl: t.baseUrl,
        httpVersion: "1.1",
        interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${t.adminKey}`), next(req))],
      }),
    );
  });
  // Each test starts from an empty table (the book follows at the next change served).
  afterEach(async () => {
    await t?.db.db.deleteFrom("model_aliases").execute();
  });
  after(async () => t?.close());

  const isConnect = (code: Code, text?: string) => (e: unknown) =>
    e instanceof ConnectError && e.code === code && (text === undefined || e.message.includes(text));
  const listed = async () =>
    (await admin.listModelAliases({})).aliases.map((a) => ({
      alias: a.alias,
      build: a.build,
      previousBuild: a.previousBuild,
    }));

  it("sets, lists sorted by alias, replaces and deletes an alias, and the coordinator resolves each change at once", async () => {
    const startedMs = Date.now();
    await admin.setModelAlias({ alias: "gpt-oss-20b", build: "gpt-oss-20b-q8", previousBuild: "gpt-oss-20b-q4" });
    await admin.setModelAlias({ alias: "alpha", build: "qwen3-8b" });
    const r = t.coordinator.aliases.current.resolve("gpt-oss-20b");
    assert.equal(r.isAlias, true);
    assert.deepEqual(r.builds, ["gpt-oss-20b-q8", "gpt-oss-20b-q4"]);
    const list = await admin.listModelAliases({});
    assert.deepEqual(
      list.aliases.map((a) => [a.alias, a.build, a.previousBuild]),
      [
        ["alpha", "qwen3-8b", ""],
        ["gpt-oss-20b", "gpt-oss-20b-q8", "gpt-oss-20b-q4"],
      ],
    );
    for (const a of list.aliases) {
      assert.ok(
        a.updatedAtUnixMs >= BigInt(startedMs - 60_000) && a.updatedAtUnixMs <= BigInt(Date.now() + 60_000),
        `updated_at ${a.updatedAtUnixMs}`,
      );
    }

    // Set replaces the whole alias: a new build, and no previous build clears the stored one.
    await admin.setModelAlias({ alias: "gpt-oss-20b", build: "gpt-oss-20b-q6" });
    assert.deepEqual(t.coordinator.aliases.current.resolve("gpt-oss-20b").builds, ["gpt-oss-20b-q6"]);
    assert.deepEqual(await listed(), [
      { alias: "alpha", build: "qwen3-8b", previousBuild: "" },
      { alias: "gpt-oss-20b", build: "gpt-oss-20b-q6", previousBuild: "" },
    ]);

    await admin.deleteModelAlias({ alias: "gpt-oss-20b" });
    const gone = t.coordinator.aliases.current.resolve("gpt-oss-20b");
    assert.equal(gone.isAlias, false, "a deleted alias is an ordinary model id again");
    assert.deepEqual(gone.builds, ["gpt-oss-20b"]);
    assert.deepEqual(await listed(), [{ alias: "alpha", build: "qwen3-8b", previousBuild: "" }]);
  });

  it("is idempotent: setting the same alias twice stores it once", async () => {
    await admin.setModelAlias({ alias: "same", build: "b1", previousBuild: "b0" });
    await admin.setModelAlias({ alias: "same", build: "b1", previousBuild: "b0" });
    assert.deepEqual(await listed(), [{ alias: "same", build: "b1", previousBuild: "b0" }]);
    assert.equal(t.coordinator.aliases.current.size, 1);
  });

  it("answers not_found for deleting an alias that does not exist", async () => {
    await assert.rejects(admin.deleteModelAlias({ alias: "never-set" }), isConnect(Code.NotFound, "never-set"));
    await admin.setModelAlias({ alias: "once", build: "b1" });
    await admin.deleteModelAlias({ alias: "once" });
    await assert.rejects(
      admin.deleteModelAlias({ alias: "once" }),
      isConnect(Code.NotFound),
      "a second delete finds nothing",
    );
  });

  it("refuses names that are not model ids, an alias equal to its build and a previous build equal to the build, storing nothing", async () => {
    const long = `m${"x".repeat(128)}`;
    const cases: { req: { alias: string; build: string; previousBuild?: string }; field: string }[] = [
      { req: { alias: "", build: "b1" }, field: "alias is required" },
      { req: { alias: "a1", build: "" }, field: "build is required" },
      { req: { alias: "-starts-with-dash", build: "b1" }, field: "alias" },
      { req: { alias: "has space", build: "b1" }, field: "alias" },
      { req: { alias: "nul\u0000", build: "b1" }, field: "alias" },
      { req: { alias: long, build: "b1" }, field: "alias" },
      { req: { alias: "a1", build: "b\n1" }, field: "build" },
      { req: { alias: "a1", build: "b1", previousBuild: "é" }, field: "previous_build" },
      { req: { alias: "a1", build: "a1" }, field: "build must differ from alias" },
      { req: { alias: "a1", build: "b1", previousBuild: "b1" }, field: "previous_build must differ from build" },
    ];
    for (const c of cases) {
      await assert.rejects(admin.setModelAlias(c.req), isConnect(Code.InvalidArgument, c.field), JSON.stringify(c.req));
    }
    await assert.rejects(admin.deleteModelAlias({ alias: "" }), isConnect(Code.InvalidArgument, "alias"));
    await assert.rejects(admin.deleteModelAlias({ alias: long }), isConnect(Code.InvalidArgument, "alias"));
    assert.deepEqual(await listed(), []);
    // The longest model id (128 characters) and an alias naming its old build as the previous one are fine.
    await admin.setModelAlias({ alias: long.slice(0, 128), build: "b1" });
    await admin.setModelAlias({ alias: "gpt-oss-20b", build: "gpt-oss-20b-v2", previousBuild: "gpt-oss-20b" });
    assert.equal((await listed()).length, 2);
  });

  it(`stores at most MAX_MODEL_ALIASES (${MAX_MODEL_ALIASES}) aliases: one more is resource_exhausted, while replacing or deleting still works`, async () => {
    await fill(MAX_MODEL_ALIASES - 1);
    await admin.setModelAlias({ alias: "last-one", build: "b1" });
    await assert.rejects(
      admin.setModelAlias({ alias: "one-too-many", build: "b1" }),
      isConnect(Code.ResourceExhausted, String(MAX_MODEL_ALIASES)),
    );
    assert.equal(t.coordinator.aliases.current.resolve("one-too-many").isAlias, false);
    // At the bound, an existing alias can still be replaced.
    await admin.setModelAlias({ alias: "last-one", build: "b2", previousBuild: "b1" });
    assert.deepEqual(t.coordinator.aliases.current.resolve("last-one").builds, ["b2", "b1"]);
    assert.equal((await admin.listModelAliases({})).aliases.length, MAX_MODEL_ALIASES);
    // Deleting one makes room for one.
    await admin.deleteModelAlias({ alias: "last-one" });
    await admin.setModelAlias({ alias: "one-too-many", build: "b1" });
    assert.equal(t.coordinator.aliases.current.size, MAX_MODEL_ALIASES);
  });

  it("lets exactly as many concurrent sets of new aliases through as there is room for", async () => {
    const room = 4;
    await fill(MAX_MODEL_ALIASES - room);
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => admin.setModelAlias({ alias: `race-${i}`, build: "b1" })),
    );
    const ok = results.filter((r) => r.status === "fulfilled").length;
    const refused = results.filter(
      (r) => r.status === "rejected" && isConnect(Code.ResourceExhausted)(r.reason),
    ).length;
    assert.equal(ok, room, "one set per free slot");
    assert.equal(refused, 12 - room, "every other set is resource_exhausted (no other failure)");
    const count = await t.db.db
      .selectFrom("model_aliases")
      .select((eb) => eb.fn.countAll<bigint>().as("n"))
      .executeTakeFirstOrThrow();
    assert.equal(Number(count.n), MAX_MODEL_ALIASES);
    assert.equal(t.coordinator.aliases.current.size, MAX_MODEL_ALIASES, "the book holds what the table holds");
  });

  it("loads the stored aliases when a coordinator starts", async () => {
    await admin.setModelAlias({ alias: "persisted", build: "b1", previousBuild: "b0" });
    const other = await startCoordinator(
      Object.freeze({
        ...loadConfig({}),
        httpPort: 0,
        grpcPort: 0,
        host: "127.0.0.1",
        adminKey: t.adminKey,
        warmPoolIntervalMs: 0,
      }),
      {
        db: t.db.db,
        logger: silentLogger,
      },
    );
    try {
      assert.deepEqual(other.aliases.current.resolve("persisted").builds, ["b1", "b0"]);
    } finally {
      await other.close();
    }
  });

  it("reaches another replica on the same database within MODEL_ALIAS_REFRESH_MS (no restart)", async () => {
    const other = await startCoordinator(
      Object.freeze({
        ...loadConfig({}),
        httpPort: 0,
        grpcPort: 0,
        host: "127.0.0.1",
        adminKey: t.adminKey,
        warmPoolIntervalMs: 0,
        modelAliasRefreshMs: 200,
      }),
      {
        db: t.db.db,
        logger: silentLogger,
      },
    );
    const changes: string[] = [];
    other.aliases.onChange((next) =>
      changes.push(
        next
          .list()
          .map((a) => a.alias)
          .join(","),
      ),
    );
    try {
      await admin.setModelAlias({ alias: "rolled", build: "b2", previousBuild: "b1" });
      const until = Date.now() + 5_000;
      while (!other.aliases.current.resolve("rolled").isAlias && Date.now() < until)
        await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(other.aliases.current.resolve("rolled").builds, ["b2", "b1"]);
      await admin.deleteModelAlias({ alias: "rolled" });
      while (other.aliases.current.resolve("rolled").isAlias && Date.now() < until + 5_000)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(other.aliases.current.resolve("rolled").isAlias, false);
      // Re-reading an unchanged table tells no listener (no reseeding churn every interval).
      await new Promise((r) => setTimeout(r, 700));
      assert.deepEqual(changes, ["rolled", ""]);
    } finally {
      await other.close();
    }
  });

  /** Inserts `n` aliases straight into the table (the bound is what is tested, not n RPCs). */
  async function fill(n: number): Promise<void> {
    const rows = Array.from({ length: n }, (_, i) => ({ alias: `bulk-${String(i).padStart(3, "0")}`, build: "b1" }));
    await t.db.db.insertInto("model_aliases").values(rows).execute();
  }
});
