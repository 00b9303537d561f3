import assert from "node:assert/strict";
import { withLogFields } from "../../../src/util/log-context.js";
import { createLogger } from "../../../src/util/logger.js";

describe("logger: pino JSON lines behind the Logger interface", () => {
  const capture = (level: string) => {
    const lines: Record<string, unknown>[] = [];
    return { lines, log: createLogger(level, (l) => lines.push(JSON.parse(l) as Record<string, unknown>)) };
  };

  it("writes level as a label, an ISO timestamp, the message and the fields (bigint as a string)", () => {
    const { lines, log } = capture("info");
    log.warn("disk low", { free_bytes: 12n, path: "/data" });
    assert.equal(lines.length, 1);
    const [l] = lines as [Record<string, unknown>];
    assert.equal(l.level, "warn");
    assert.equal(l.msg, "disk low");
    assert.equal(l.free_bytes, "12");
    assert.equal(l.path, "/data");
    assert.equal(new Date(String(l.timestamp)).toISOString(), l.timestamp);
  });

  it("drops lines below its level, and reads an unknown level as info", () => {
    const { lines, log } = capture("warn");
    log.debug("a");
    log.info("b");
    log.error("c");
    assert.deepEqual(
      lines.map((l) => l.msg),
      ["c"],
    );
    const other = capture("verbose");
    other.log.debug("x");
    other.log.info("y");
    assert.deepEqual(
      other.lines.map((l) => l.msg),
      ["y"],
    );
  });

  it("adds the fields of the enclosing log scope to every line, across awaits, under the caller's own", async () => {
    const { lines, log } = capture("debug");
    await withLogFields({ request_id: "req_1", trace_id: "t1" }, async () => {
      log.info("inside");
      await new Promise((r) => setTimeout(r, 1));
      withLogFields({ attempt: 2 }, () => log.debug("nested", { trace_id: "explicit" }));
    });
    log.info("outside");
    assert.deepEqual(
      lines.map((l) => [l.msg, l.request_id, l.trace_id, l.attempt]),
      [
        ["inside", "req_1", "t1", undefined],
        ["nested", "req_1", "explicit", 2],
        ["outside", undefined, undefined, undefined],
      ],
    );
  });
});
