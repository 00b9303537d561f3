import assert from "node:assert/strict";
import { peerAddress } from "../../../src/protocol/provider-admission.js";
import { throttleKey } from "../../../src/util/throttle-key.js";

describe("peerAddress", () => {
  it("cuts the port grpc-js appends, in every form it writes", () => {
    const cases: [string, string][] = [
      ["127.0.0.1:59462", "127.0.0.1"],
      ["::1:5678", "::1"],
      ["2001:db8::7:443", "2001:db8::7"],
      ["::ffff:10.0.0.1:4000", "::ffff:10.0.0.1"],
      ["ipv4:1.2.3.4:5678", "1.2.3.4"],
      ["ipv6:[2001:db8::1]:5678", "2001:db8::1"],
      ["[::1]:1", "::1"],
      ["unknown", "unknown"],
      ["unix:/tmp/sock", "unix:/tmp/sock"],
    ];
    for (const [peer, address] of cases) assert.equal(peerAddress(peer), address, peer);
  });

  it("counts one IPv6 host's connections under its /64 and a mapped IPv4 as the IPv4", () => {
    assert.equal(throttleKey(peerAddress("2001:db8:0:1::a:5678")), throttleKey(peerAddress("2001:db8:0:1::b:6789")));
    assert.equal(throttleKey(peerAddress("::ffff:10.0.0.1:4000")), "10.0.0.1");
  });
});
