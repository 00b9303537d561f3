/**
 * The API-key cache with a fake clock and a scripted lookup in place of PostgreSQL: TTLs, negative entries,
 * coalescing, stale-if-error, revocation and the LRU bounds (issue 13, item 2).
 */
import assert from "node:assert/strict";
import { ApiKeyCache, type ApiKeyCacheLimits } from "../../../src/ledger/api-key-cache.js";
import { apiKeyFormatProblem, MIN_API_KEY_SECRET_CHARS } from "../../../src/ledger/api-key-format.js";
import type { Principal } from "../../../src/accounts/types.js";
import { FakeClock } from "../../../src/util/clock.js";

const alice: Principal = { accountId: "acct_a", keyId: "key_a", tier: "consumer" };
const bob: Principal = { accountId: "acct_b", keyId: "key_b", tier: "service" };

/** A scripted database: `rows` answers lookups, `down` makes them fail, `calls` counts them. */
function fakeDb() {
  const db = {
    rows: new Map<string, Principal>(),
    down: false,
    calls: 0,
    lookup(hash: string): () => Promise<Principal | undefined> {
      return async () => {
        db.calls++;
        // The row is read when the lookup starts; the answer arrives a tick later.
        const down = db.down;
        const row = db.rows.get(hash);
        await Promise.resolve();
        if (down) throw new Error("connection refused");
        return row;
      };
    },
  };
  return db;
}

function setup(limits: Partial<ApiKeyCacheLimits> = {}) {
  const clock = new FakeClock();
  const outcomes: string[] = [];
  const cache = new ApiKeyCache({
    clock,
    ttlMs: 5_000,
    negativeTtlMs: 30_000,
    staleIfErrorMs: 3_600_000,
    ...limits,
    onLookup: (o) => outcomes.push(o),
  });
  const db = fakeDb();
  const resolve = (hash: string) => cache.resolve(hash, db.lookup(hash));
  return { clock, cache, db, resolve, outcomes };
}

describe("ApiKeyCache", () => {
  it("trusts a known key for the TTL, then looks it up again", async () => {
    const { clock, db, resolve, cache } = setup();
    db.rows.set("h_a", alice);
    assert.deepEqual(await resolve("h_a"), alice);
    clock.advance(4_999);
    assert.deepEqual(await resolve("h_a"), alice);
    assert.deepEqual(cache.fresh("h_a"), alice);
    assert.equal(db.calls, 1);
    clock.advance(1);
    assert.equal(cache.fresh("h_a"), undefined, "past the TTL the cache no longer vouches without a lookup");
    assert.deepEqual(await resolve("h_a"), alice);
    assert.equal(db.calls, 2);
  });

  it("remembers an unknown key for the negative TTL, so repeats cost no query", async () => {
    const { clock, db, resolve } = setup();
    for (let i = 0; i < 50; i++) assert.equal(await resolve("h_wrong"), undefined);
    assert.equal(db.calls, 1);
    clock.advance(29_999);
    assert.equal(await resolve("h_wrong"), undefined);
    assert.equal(db.calls, 1);
    clock.advance(1);
    db.rows.set("h_wrong", bob); // issued since (through another process)
    assert.deepEqual(await resolve("h_wrong"), bob);
    assert.equal(db.calls, 2);
  });

  it("does not remember unknown keys when the negative TTL is 0", async () => {
    const { db, resolve } = setup({ negativeTtlMs: 0 });
    await resolve("h_wrong");
    await resolve("h_wrong");
    assert.equal(db.calls, 2);
  });

  it("coalesces concurrent misses: one lookup per key however many ask at once", async () => {
    const { db, resolve, cache } = setup();
    db.rows.set("h_a", alice);
    const answers = await Promise.all([
      ...Array.from({ length: 200 }, () => resolve("h_a")),
      ...Array.from({ length: 100 }, () => resolve("h_x")),
    ]);
    assert.equal(db.calls, 2, "one lookup for h_a, one for h_x");
    assert.equal(answers.filter((p) => p?.keyId === "key_a").length, 200);
    assert.equal(answers.filter((p) => p === undefined).length, 100);
    assert.equal(cache.size.inflight, 0);
  });

  it("serves a known key past its TTL while lookups fail (stale-if-error), retrying once per TTL, up to the bound", async () => {
    const { clock, db, resolve, outcomes } = setup({ staleIfErrorMs: 60_000 });
    db.rows.set("h_a", alice);
    await resolve("h_a");
    db.down = true;
    clock.advance(10_000);
    const during = await Promise.all(Array.from({ length: 20 }, () => resolve("h_a")));
    assert.ok(during.every((p) => p?.keyId === "key_a"));
    assert.equal(db.calls, 2, "one failed lookup, shared by the 20 callers");
    clock.advance(4_999);
    await resolve("h_a");
    assert.equal(db.calls, 2, "no new attempt within a TTL of the failure");
    clock.advance(1);
    await resolve("h_a");
    assert.equal(db.calls, 3);
    clock.advance(60_000 - 15_000); // 60 s since the key was last verified
    assert.deepEqual(await resolve("h_a"), alice);
    clock.advance(5_001);
    await assert.rejects(resolve("h_a"), /connection refused/, "past the stale bound the error surfaces");
    assert.deepEqual(outcomes, ["known", "stale", "stale", "stale", "error"]);
    db.down = false;
    assert.deepEqual(await resolve("h_a"), alice, "the database back: verified again");
  });

  it("rejects a key it has never verified while lookups fail, and a known key when stale-if-error is 0", async () => {
    const { db, resolve, clock } = setup({ staleIfErrorMs: 0 });
    db.rows.set("h_a", alice);
    await resolve("h_a");
    db.down = true;
    await assert.rejects(resolve("h_new"), /connection refused/);
    clock.advance(5_000);
    await assert.rejects(resolve("h_a"), /connection refused/);
  });

  it("forgets a revoked key at once, also while lookups fail, and does not re-cache a lookup that raced the revocation", async () => {
    const { db, resolve, cache } = setup();
    db.rows.set("h_a", alice);
    db.rows.set("h_b", bob);
    await resolve("h_a");
    await resolve("h_b");
    db.down = true;
    cache.forgetKey("key_a");
    await assert.rejects(resolve("h_a"), /connection refused/, "no stale answer for a revoked key");
    assert.deepEqual(cache.fresh("h_b"), bob, "other keys stay");

    db.down = false;
    const racing = resolve("h_a"); // in flight, reads the row before the revocation commits
    cache.forgetKey("key_a");
    db.rows.delete("h_a");
    assert.deepEqual(await racing, alice, "the racing caller gets what its lookup read");
    assert.equal(cache.fresh("h_a"), undefined, "but the cache does not keep it");
    assert.equal(await resolve("h_a"), undefined);
  });

  it("forgets an unknown entry when a key is issued with that hash", async () => {
    const { db, resolve, cache } = setup();
    assert.equal(await resolve("h_new"), undefined);
    db.rows.set("h_new", alice);
    cache.forgetHash("h_new");
    assert.deepEqual(await resolve("h_new"), alice);
  });

  it("is bounded: the least recently used known key goes first, and unknown keys never evict known ones", async () => {
    const { db, resolve, cache } = setup({ maxKeys: 3, maxUnknownKeys: 10 });
    for (const h of ["h1", "h2", "h3", "h4"]) db.rows.set(h, { ...alice, keyId: h });
    await resolve("h1");
    await resolve("h2");
    await resolve("h3");
    await resolve("h1"); // h1 is now the most recently used
    await resolve("h4"); // evicts h2 only
    assert.ok(cache.fresh("h1") && cache.fresh("h3") && cache.fresh("h4"));
    assert.equal(cache.fresh("h2"), undefined);
    for (let i = 0; i < 1_000; i++) await resolve(`wrong_${i}`);
    assert.deepEqual(cache.size, { known: 3, unknown: 10, inflight: 0 });
    assert.ok(
      cache.fresh("h1") && cache.fresh("h3") && cache.fresh("h4"),
      "a spray of wrong keys left every known key in place",
    );
  });
});

describe("apiKeyFormatProblem", () => {
  const min = MIN_API_KEY_SECRET_CHARS;
  const ok = [`sk-${"a".repeat(min)}`, "sk-newcomer-0123456789", `sk-${"Az09_-".repeat(10)}`, `sk-${"x".repeat(256)}`];
  const bad = [
    "sk-",
    "sk-test",
    `sk-${"a".repeat(min - 1)}`,
    `pk-${"a".repeat(30)}`,
    `sk-${"a".repeat(min - 1)} `,
    `sk-${"a".repeat(min)}\u0000`,
    `sk-${"é".repeat(25)}`,
    `sk-${"x".repeat(257)}`,
  ];
  for (const v of ok)
    it(`accepts ${JSON.stringify(v.slice(0, 30))}… (${v.length} chars)`, () =>
      assert.equal(apiKeyFormatProblem(v), undefined));
  for (const v of bad)
    it(`refuses ${JSON.stringify(v.slice(0, 30))} (${v.length} chars)`, () =>
      assert.match(apiKeyFormatProblem(v) ?? "", new RegExp(`'sk-' followed by ${min} to 256 characters`)));
});
