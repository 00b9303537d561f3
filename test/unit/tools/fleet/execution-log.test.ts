import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chipProfile } from "../../../../src/tools/fleet/chip-profiles.js";
import { checkExecutionLog, describeViolations, parseExecutionLog } from "../../../../src/tools/fleet/execution-log.js";
import { parseFleetArgs, runFleetCli } from "../../../../src/tools/fleet/fleet.js";
import { SimulatedMac, type ExecutionEntry } from "../../../../src/tools/fleet/simulated-mac.js";
import type { SimulatedMacOptions } from "../../../../src/tools/fleet/simulated-mac-options.js";
import { FakeCoordinator, GOOD_TOKEN } from "./fake-coordinator.js";

const entry = (
  o: Partial<ExecutionEntry> & Pick<ExecutionEntry, "requestId" | "startMs" | "endMs">,
): ExecutionEntry => ({
  serial: "A",
  coordinator: "127.0.0.1:1",
  attemptSpanId: undefined,
  outcome: "completed",
  completionTokens: 10,
  ...o,
});

describe("checkExecutionLog", () => {
  it("accepts sequential runs of one id on two Macs, including runs that only touch", () => {
    const log = [
      entry({ requestId: "r1", serial: "A", startMs: 0, endMs: 100, outcome: "disconnected" }),
      entry({ requestId: "r1", serial: "B", startMs: 100, endMs: 200 }),
      entry({ requestId: "r2", serial: "A", startMs: 50, endMs: 150 }),
    ];
    assert.deepEqual(checkExecutionLog(log), []);
  });

  it("flags one id running on two Macs at overlapping times", () => {
    const log = [
      entry({ requestId: "r1", serial: "A", startMs: 0, endMs: 100 }),
      entry({ requestId: "r1", serial: "B", startMs: 99, endMs: 200 }),
    ];
    const v = checkExecutionLog(log);
    assert.equal(v.length, 1);
    assert.equal(v[0]!.kind, "overlap");
    assert.deepEqual(
      v[0]!.entries.map((e) => e.serial),
      ["A", "B"],
    );
    assert.match(describeViolations(v), /overlap r1: A@.*B@/);
  });

  it("finds an overlap with a long earlier run even past a short one in between", () => {
    const log = [
      entry({ requestId: "r1", serial: "A", startMs: 0, endMs: 1000 }),
      entry({ requestId: "r1", serial: "B", startMs: 10, endMs: 20 }),
      entry({ requestId: "r1", serial: "C", startMs: 500, endMs: 600 }),
    ];
    assert.deepEqual(
      checkExecutionLog(log).map((v) => v.entries.map((e) => e.serial)),
      [
        ["A", "B"],
        ["A", "C"],
      ],
    );
  });

  it("leaves rejections out by default and counts them when asked", () => {
    const log = [
      entry({ requestId: "r1", serial: "A", startMs: 0, endMs: 100 }),
      entry({ requestId: "r1", serial: "B", startMs: 10, endMs: 10, outcome: "rejected" }),
    ];
    assert.deepEqual(checkExecutionLog(log), []);
    assert.equal(checkExecutionLog(log, { ignoreOutcomes: [] }).length, 1);
  });

  it("flags two runs under one attempt span, and more runs than attempts allow", () => {
    const log = [
      entry({ requestId: "r1", serial: "A", startMs: 0, endMs: 10, attemptSpanId: "s1" }),
      entry({ requestId: "r1", serial: "B", startMs: 20, endMs: 30, attemptSpanId: "s1" }),
      entry({ requestId: "r1", serial: "C", startMs: 40, endMs: 50, attemptSpanId: "s2" }),
    ];
    assert.deepEqual(
      checkExecutionLog(log).map((v) => v.kind),
      ["repeated_attempt"],
    );
    assert.deepEqual(
      checkExecutionLog(log, { maxRunsPerRequest: 2 }).map((v) => v.kind),
      ["repeated_attempt", "too_many_runs"],
    );
    assert.deepEqual(checkExecutionLog(log.slice(1), { maxRunsPerRequest: 2 }), []);
  });

  it("parses JSON lines back", () => {
    const e = entry({ requestId: "r1", startMs: 1, endMs: 2, attemptSpanId: "s1" });
    assert.deepEqual(parseExecutionLog(`${JSON.stringify(e)}\n\n${JSON.stringify(e)}\n`), [e, e]);
  });
});

describe("SimulatedMac execution log", () => {
  let coord: FakeCoordinator;
  beforeEach(async () => {
    coord = await FakeCoordinator.start();
  });
  afterEach(() => coord.close());

  /** A gpt-oss Mac on the fake coordinator whose execution log the test reads. */
  const loggingMac = (serial: string, over: Partial<SimulatedMacOptions>) => {
    const log: ExecutionEntry[] = [];
    const mac = new SimulatedMac({
      coordinator: coord.address,
      token: GOOD_TOKEN,
      serial,
      chip: chipProfile("m4-max-128")!,
      models: ["gpt-oss-20b"],
      warmModels: ["gpt-oss-20b"],
      onExecution: (e) => log.push(e),
      ...over,
    }).start();
    return { mac, log };
  };

  it("records every request the Mac received: serial, id, coordinator, attempt span, times, outcome, tokens", async () => {
    const { mac, log } = loggingMac("LOG-0", { timeScale: 50, naturalTokens: { min: 30, max: 30 } });
    try {
      await mac.ready();
      const s = await coord.session(1);
      await s.until(() => mac.loadedModels().length === 1, 5000, "warm load");
      const before = Date.now();
      s.send({
        msg: {
          case: "inferenceRequest",
          value: {
            requestId: "req-ok",
            model: "gpt-oss-20b",
            bodyJson: new TextEncoder().encode(
              JSON.stringify({ model: "gpt-oss-20b", messages: [{ role: "user", content: "hi" }] }),
            ),
            traits: { maxTokens: 0, stream: true },
            traceContext: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
          },
        },
      });
      s.infer("req-unknown-model", "no-such-model", { model: "no-such-model", messages: [] });
      await s.finished("req-ok");
      await s.finished("req-unknown-model");
      await s.until(() => log.length === 2, 2000, "two log entries");
      const ok = log.find((e) => e.requestId === "req-ok")!;
      assert.equal(ok.serial, "LOG-0");
      assert.equal(ok.coordinator, coord.address);
      assert.equal(ok.attemptSpanId, "b7ad6b7169203331");
      assert.equal(ok.outcome, "completed");
      assert.equal(ok.completionTokens, 30);
      assert.ok(ok.startMs >= before && ok.endMs >= ok.startMs && ok.endMs <= Date.now(), JSON.stringify(ok));
      const rejected = log.find((e) => e.requestId === "req-unknown-model")!;
      assert.equal(rejected.outcome, "rejected");
      assert.equal(rejected.attemptSpanId, undefined);
    } finally {
      await mac.stop();
    }
  });

  it("ends a run cut by a broken stream at the break, as `disconnected` or `aborted`", async () => {
    const { mac, log } = loggingMac("LOG-1", {
      timeScale: 1,
      naturalTokens: { min: 500, max: 500 },
      reconnectMaxMs: 50,
    });
    try {
      await mac.ready();
      const s = await coord.session(1);
      await s.until(() => mac.loadedModels().length === 1, 5000, "warm load");
      s.infer("req-long", "gpt-oss-20b", { model: "gpt-oss-20b", messages: [{ role: "user", content: "x" }] });
      await s.until(() => s.framesFor("req-long").some((f) => f.msg.case === "inferenceChunk"), 5000, "first chunk");
      const cutAt = Date.now();
      mac.dropConnection();
      await s.until(() => log.length === 1, 3000, "the cut run logged");
      assert.ok(["disconnected", "aborted"].includes(log[0]!.outcome), log[0]!.outcome);
      assert.ok(log[0]!.endMs - cutAt < 500, `ended ${log[0]!.endMs - cutAt} ms after the cut`);
    } finally {
      await mac.stop();
    }
  });
});

describe("coordinator fleet CLI: several coordinators and the execution log", () => {
  it("parses a list of coordinators, --reconnect-max-ms and --exec-log, and refuses bad values", () => {
    const p = parseFleetArgs(
      ["--coordinator", "a:1,b:2,c:3", "--reconnect-max-ms", "500", "--exec-log", "/tmp/x.jsonl", "--token", "t"],
      {},
    );
    assert.equal(p.kind, "run");
    if (p.kind !== "run") return;
    assert.deepEqual(p.options.coordinator, ["a:1", "b:2", "c:3"]);
    assert.equal(p.options.reconnectMaxMs, 500);
    assert.equal(p.options.execLog, "/tmp/x.jsonl");
    const one = parseFleetArgs(["--coordinator", "a:1", "--token", "t"], {});
    assert.equal(one.kind === "run" && one.options.coordinator, "a:1");
    for (const [argv, re] of [
      [["--coordinator", "a:1,nohost"], /HOST:PORT/],
      [["--reconnect-max-ms", "0"], /--reconnect-max-ms must be/],
      [["--reconnect-max-ms", "600001"], /--reconnect-max-ms must be/],
    ] as [string[], RegExp][]) {
      const r = parseFleetArgs([...argv, "--token", "t"], {});
      assert.equal(r.kind, "error", argv.join(" "));
      assert.match(r.kind === "error" ? r.message : "", re);
    }
    assert.equal(parseFleetArgs(["--reconnect-max-ms", "600000", "--token", "t"], {}).kind, "run");
  });

  it("writes one JSON line per inference to --exec-log", async () => {
    const dir = await mkdtemp(join(tmpdir(), "exec-log-"));
    const coords = await Promise.all([FakeCoordinator.start(), FakeCoordinator.start()]);
    try {
      const path = join(dir, "exec.jsonl");
      const out: string[] = [];
      const signals = new EventEmitter();
      const exit = runFleetCli(
        [
          "--coordinator",
          coords.map((c) => c.address).join(","),
          "--count",
          "2",
          "--token",
          GOOD_TOKEN,
          "--instant",
          "--models",
          "gpt-oss-20b",
          "--exec-log",
          path,
        ],
        {},
        { stdout: (l) => out.push(l), stderr: (l) => out.push(l), signals },
      );
      const s0 = await coords[0]!.session(1);
      const s1 = await coords[1]!.session(1);
      await s0.until(() => out.some((l) => l.includes("all 2 Macs registered")), 3000, "registered");
      s0.infer("req-a", "gpt-oss-20b", { model: "gpt-oss-20b", messages: [{ role: "user", content: "a" }] });
      s1.infer("req-b", "gpt-oss-20b", { model: "gpt-oss-20b", messages: [{ role: "user", content: "b" }] });
      await s0.finished("req-a");
      await s1.finished("req-b");
      signals.emit("SIGINT");
      assert.equal(await exit, 0);
      const log = parseExecutionLog(await readFile(path, "utf8"));
      assert.deepEqual(log.map((e) => [e.requestId, e.coordinator, e.outcome]).sort(), [
        ["req-a", coords[0]!.address, "completed"],
        ["req-b", coords[1]!.address, "completed"],
      ]);
    } finally {
      for (const c of coords) c.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
