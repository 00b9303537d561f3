import assert from "node:assert/strict";
import {
  DESCRIPTOR_RESERVE,
  descriptorShortfall,
  openFileLimit,
  parseOpenFileLimit,
} from "../../../src/util/open-file-limit.js";

const limits = (soft: string, hard: string) =>
  [
    "Limit                     Soft Limit           Hard Limit           Units     ",
    "Max processes             63704                63704                processes ",
    `Max open files            ${soft.padEnd(21)}${hard.padEnd(21)}files     `,
    "Max locked memory         8388608              8388608              bytes     ",
  ].join("\n");

describe("open-file limit", () => {
  it("reads the soft limit from /proc/<pid>/limits", () => {
    assert.equal(parseOpenFileLimit(limits("20000", "1048576")), 20_000);
    assert.equal(parseOpenFileLimit(limits("unlimited", "unlimited")), undefined);
    assert.equal(parseOpenFileLimit("Max processes 10 10 processes"), undefined);
  });

  it("reads this process's limit on Linux, and says it does not know elsewhere", () => {
    const n = openFileLimit();
    if (process.platform === "linux") assert.ok(n !== undefined && n > 0, `limit ${n}`);
    else assert.equal(n, undefined);
  });

  it("warns when both ports' connection bounds and the reserve do not fit in it, and not one descriptor before", () => {
    const config = { providerMaxConnections: 20_000, httpMaxConnections: 10_000 };
    const fits = 30_000 + DESCRIPTOR_RESERVE;
    assert.equal(descriptorShortfall(config, fits), undefined);
    assert.equal(descriptorShortfall(config, undefined), undefined, "an unknown limit is not a shortfall");
    const short = descriptorShortfall(config, fits - 1);
    assert.deepEqual(
      { ...short, fix: undefined },
      {
        open_file_limit: fits - 1,
        provider_max_connections: 20_000,
        http_max_connections: 10_000,
        reserve: DESCRIPTOR_RESERVE,
        fix: undefined,
      },
    );
    assert.match(String(short?.fix), /HTTP_MAX_CONNECTIONS/);
  });
});
