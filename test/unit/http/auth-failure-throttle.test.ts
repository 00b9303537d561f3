/** Failed API-key attempts per client address, and which address a request is charged to (issue 13, item 2). */
import assert from "node:assert/strict";
import { AuthFailureThrottle } from "../../../src/http/auth-failure-throttle.js";
import { clientAddress } from "../../../src/http/client-address.js";
import { throttleKey } from "../../../src/util/throttle-key.js";

describe("AuthFailureThrottle", () => {
  const t0 = 1_700_000_000_000;

  it("allows a burst of failures, then refuses with the wait until one more attempt is regained", () => {
    const th = new AuthFailureThrottle({ burst: 20, refillPerSec: 2 });
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(th.check("1.2.3.4", t0), { allowed: true }, `attempt ${i + 1}`);
      th.recordFailure("1.2.3.4", t0);
    }
    assert.deepEqual(th.check("1.2.3.4", t0), { allowed: false, retryAfterMs: 500 });
    assert.deepEqual(th.check("1.2.3.4", t0 + 499), { allowed: false, retryAfterMs: 1 });
    assert.deepEqual(th.check("1.2.3.4", t0 + 500), { allowed: true });
    assert.deepEqual(th.check("5.6.7.8", t0), { allowed: true }, "other addresses are not affected");
  });

  it("holds a sprayer to the refill rate over time", () => {
    const th = new AuthFailureThrottle({ burst: 20, refillPerSec: 2 });
    let tried = 0;
    // One attempt every 10 ms for 60 s: 6,000 tries offered.
    for (let ms = 0; ms < 60_000; ms += 10) {
      if (!th.check("9.9.9.9", t0 + ms).allowed) continue;
      tried++;
      th.recordFailure("9.9.9.9", t0 + ms);
    }
    assert.ok(tried >= 20 + 2 * 59 && tried <= 20 + 2 * 60 + 1, `${tried} attempts reached the database in 60 s`);
  });

  it("charges failures that were in flight together as debt, so concurrency does not buy extra attempts", () => {
    const th = new AuthFailureThrottle({ burst: 2, refillPerSec: 1 });
    // Ten lookups pass the check at once (nothing has failed yet), then all fail.
    const passed = Array.from({ length: 10 }, () => th.check("1.1.1.1", t0).allowed).filter(Boolean).length;
    assert.equal(passed, 10);
    for (let i = 0; i < 10; i++) th.recordFailure("1.1.1.1", t0);
    const d = th.check("1.1.1.1", t0);
    assert.equal(d.allowed, false);
    assert.equal(d.allowed ? 0 : d.retryAfterMs, 9_000, "8 attempts of debt plus one to regain at 1/s");
  });

  it("remembers at most maxAddresses (the least recently failing is forgotten, which only forgives it)", () => {
    const th = new AuthFailureThrottle({ burst: 1, refillPerSec: 1, maxAddresses: 100 });
    for (let i = 0; i < 10_000; i++) th.recordFailure(`10.0.${i >> 8}.${i & 255}`, t0);
    assert.equal(th.size, 100);
    assert.equal(th.check("10.0.0.0", t0).allowed, true);
    assert.equal(th.check(`10.0.39.15`, t0).allowed, false, "the most recent failures are remembered");
  });
});

describe("clientAddress", () => {
  const cases: [string | undefined, string | string[] | undefined, number, string][] = [
    ["127.0.0.1", undefined, 0, "127.0.0.1"],
    ["::ffff:127.0.0.1", undefined, 0, "127.0.0.1"],
    ["10.0.0.5", "6.6.6.6", 0, "10.0.0.5"], // X-Forwarded-For ignored unless a proxy is trusted
    ["10.0.0.5", "6.6.6.6, 203.0.113.7", 1, "203.0.113.7"], // one proxy: the entry it appended
    ["10.0.0.5", "6.6.6.6, 203.0.113.7, 10.0.0.9", 2, "203.0.113.7"], // two proxies
    ["10.0.0.5", ["6.6.6.6", "203.0.113.7"], 1, "203.0.113.7"], // repeated header lines
    ["10.0.0.5", "203.0.113.7", 3, "203.0.113.7"], // fewer entries than trusted hops: the leftmost
    ["10.0.0.5", "", 1, "10.0.0.5"],
    ["10.0.0.5", "203.0.113.7:5555", 1, "203.0.113.7"],
    ["10.0.0.5", "[2001:db8::1]:443", 1, "2001:db8:0:0::/64"],
    ["2001:db8:aaaa:bbbb:1:2:3:4", undefined, 0, "2001:db8:aaaa:bbbb::/64"],
    ["2001:db8:aaaa:bbbb::ffff", undefined, 0, "2001:db8:aaaa:bbbb::/64"], // same /64 as above
    ["fe80::1%eth0", undefined, 0, "fe80:0:0:0::/64"],
    ["::1", undefined, 0, "0:0:0:0::/64"],
    [undefined, undefined, 0, "unknown"],
  ];
  for (const [remote, xff, hops, want] of cases) {
    it(`${remote} with X-Forwarded-For ${JSON.stringify(xff)} and ${hops} trusted hops → ${want}`, () => {
      assert.equal(clientAddress(remote, xff, hops), want);
    });
  }

  it("keeps anything that is not an address short", () => {
    assert.equal(throttleKey("x".repeat(1_000)).length, 64);
  });
});
