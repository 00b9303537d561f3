import assert from "node:assert/strict";
import { compareVersions, meetsFloor, parseVersion } from "../../../src/util/version.js";

describe("compareVersions", () => {
  const table: Array<[string, string, -1 | 0 | 1]> = [
    ["0.6.3", "0.6.3", 0],
    ["v0.6.3", "0.6.3", 0],
    ["V1.0", "1.0.0", 0],
    ["0.6.4", "0.6.3", 1],
    ["0.6.2", "0.6.3", -1],
    ["0.10.0", "0.9.9", 1],
    ["1.0.0", "0.99.99", 1],
    ["0.6.3-rc.1", "0.6.3", -1],
    ["0.6.3-rc.2", "0.6.3-rc.1", 1],
    ["0.6.3-rc.10", "0.6.3-rc.9", 1],
    ["0.6.3-rc", "0.6.3-rc.1", -1],
    ["0.6.3-alpha", "0.6.3-beta", -1],
    ["0.6.3-1", "0.6.3-alpha", -1],
    ["0.6.4-rc.1", "0.6.3", 1],
    ["0.6.3+build.7", "0.6.3", 0],
    [" 0.6.3 ", "0.6.3", 0],
    ["", "0.0.1", -1],
    ["garbage", "0.0.1", -1],
    ["", "garbage", 0],
  ];
  for (const [a, b, expected] of table) {
    it(`orders "${a}" ${["<", "=", ">"][expected + 1]} "${b}"`, () => {
      assert.equal(Math.sign(compareVersions(a, b)), expected);
      assert.equal(Math.sign(compareVersions(b, a)), expected === 0 ? 0 : -expected);
    });
  }

  it("parses components and pre-release identifiers", () => {
    assert.deepEqual(parseVersion("v0.6.3-rc.2"), { core: [0, 6, 3], pre: ["rc", "2"] });
    assert.equal(parseVersion("1.x"), undefined);
  });
});

describe("meetsFloor", () => {
  const table: Array<[string, string, boolean]> = [
    ["0.6.3", "0.6.3", true],
    ["v0.6.3", "0.6.3", true],
    ["0.7.0", "0.6.3", true],
    ["0.6.2", "0.6.3", false],
    ["0.6.3-rc.1", "0.6.3", false],
    ["0.6.4-rc.1", "0.6.3", true],
    ["", "0.6.3", false],
    ["unknown", "0.6.3", false],
    ["", "", true],
    ["0.1.0", "", true],
  ];
  for (const [version, floor, expected] of table) {
    it(`"${version}" ${expected ? "meets" : "fails"} floor "${floor}"`, () => {
      assert.equal(meetsFloor(version, floor), expected);
    });
  }
});
