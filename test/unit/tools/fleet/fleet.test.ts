import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { chipProfile } from "../../../../src/tools/fleet/chip-profiles.js";
import { parseFleetArgs, runFleetCli, startFleet, type Fleet } from "../../../../src/tools/fleet/fleet.js";
import { FakeCoordinator, GOOD_TOKEN } from "./fake-coordinator.js";

describe("startFleet", () => {
  let coord: FakeCoordinator;
  let fleet: Fleet | undefined;

  beforeEach(async () => {
    coord = await FakeCoordinator.start();
  });
  afterEach(async () => {
    await fleet?.stop();
    fleet = undefined;
    coord.close();
  });

  it("registers every Mac with distinct serials and deterministic chips", async () => {
    fleet = await startFleet({
      coordinator: coord.address,
      token: GOOD_TOKEN,
      count: 4,
      models: ["gpt-oss-20b", "gemma-4-26b"],
      seed: 3,
      instant: true,
    });
    await fleet.ready();
    assert.equal(coord.sessions.length, 4);
    const serials = new Set(coord.sessions.map((s) => s.register!.serial));
    assert.equal(serials.size, 4);
    const again = await startFleet({
      coordinator: coord.address,
      token: GOOD_TOKEN,
      count: 4,
      models: ["gpt-oss-20b"],
      seed: 3,
      instant: true,
    });
    await again.ready();
    assert.deepEqual(
      again.macs.map((m) => m.chip.key),
      fleet.macs.map((m) => m.chip.key),
    );
    await again.stop();
  });

  it("puts on each Mac only the models its memory can load", async () => {
    fleet = await startFleet({
      coordinator: coord.address,
      token: GOOD_TOKEN,
      count: 2,
      models: ["gpt-oss-20b", "gemma-4-26b"],
      chips: [chipProfile("m4-pro-48")!, chipProfile("m4-max-128")!],
      instant: true,
    });
    await fleet.ready();
    const byChip = new Map(
      coord.sessions.map((s) => [s.register!.hardware!.memoryGb, s.register!.models.map((m) => m.id)]),
    );
    assert.deepEqual(byChip.get(48), ["gpt-oss-20b"]); // gemma needs 48 GB free under the 3x rule
    assert.deepEqual(byChip.get(128), ["gpt-oss-20b", "gemma-4-26b"]);
  });

  it("warms one model per Mac so every model has warm capacity", async () => {
    fleet = await startFleet({
      coordinator: coord.address,
      token: GOOD_TOKEN,
      count: 2,
      models: ["gpt-oss-20b", "gemma-4-26b"],
      chips: [chipProfile("m4-max-128")!],
      instant: true,
      warm: true,
    });
    await fleet.ready();
    const f = fleet;
    await coord.sessions[0]!.until(() => f.macs.every((m) => m.loadedModels().length === 1), 3000, "warm loads");
    assert.deepEqual(f.macs.map((m) => m.loadedModels()[0]).sort(), ["gemma-4-26b", "gpt-oss-20b"]);
  });

  it("rejects ready() when the coordinator refuses the token", async () => {
    fleet = await startFleet({
      coordinator: coord.address,
      token: "nope",
      count: 1,
      models: ["gpt-oss-20b"],
      instant: true,
    });
    await assert.rejects(fleet.ready(), /UNAUTHENTICATED/);
  });
});

describe("coordinator fleet CLI", () => {
  const io = () => {
    const out: string[] = [];
    const err: string[] = [];
    const signals = new EventEmitter();
    return {
      out,
      err,
      signals,
      io: { stdout: (l: string) => out.push(l), stderr: (l: string) => err.push(l), signals },
    };
  };

  it("prints help with every flag", async () => {
    const t = io();
    assert.equal(await runFleetCli(["--help"], {}, t.io), 0);
    for (const flag of [
      "--coordinator",
      "--count",
      "--models",
      "--time-scale",
      "--token",
      "--seed",
      "--version",
      "--instant",
    ]) {
      assert.ok(t.out.join("").includes(flag), flag);
    }
  });

  it("explains invalid arguments with exit code 2", async () => {
    const cases: [string[], RegExp][] = [
      [["--count", "0", "--token", "t"], /--count must be/],
      [["--time-scale", "0", "--token", "t"], /--time-scale must be/],
      [["--coordinator", "nohost", "--token", "t"], /HOST:PORT/],
      [["--version", "seven", "--token", "t"], /semver/],
      [["--chips", "m9-giga", "--token", "t"], /unknown chip/],
      [[], /provider token is required/],
      [["--bogus"], /Unknown option/],
    ];
    for (const [argv, re] of cases) {
      const t = io();
      assert.equal(await runFleetCli(argv, {}, t.io), 2, argv.join(" "));
      assert.match(t.err.join(""), re);
    }
  });

  it("takes the token from PROVIDER_TOKEN and parses every flag", () => {
    const p = parseFleetArgs(
      [
        "--count",
        "3",
        "--models",
        "gpt-oss-20b",
        "--time-scale",
        "10",
        "--seed",
        "7",
        "--version",
        "0.6.2",
        "--no-warm",
      ],
      { PROVIDER_TOKEN: "envtok" },
    );
    assert.equal(p.kind, "run");
    if (p.kind !== "run") return;
    assert.deepEqual(
      {
        token: p.options.token,
        count: p.options.count,
        models: p.options.models,
        timeScale: p.options.timeScale,
        seed: p.options.seed,
        version: p.options.version,
        warm: p.options.warm,
      },
      { token: "envtok", count: 3, models: ["gpt-oss-20b"], timeScale: 10, seed: 7, version: "0.6.2", warm: false },
    );
  });

  it("logs one line per registered Mac and stops cleanly on SIGINT", async () => {
    const coord = await FakeCoordinator.start();
    try {
      const t = io();
      const exit = runFleetCli(
        ["--coordinator", coord.address, "--count", "2", "--token", GOOD_TOKEN, "--instant"],
        {},
        t.io,
      );
      await coord.session(2);
      await coord.sessions[1]!.until(
        () => t.out.some((l) => l.includes("all 2 Macs registered")),
        3000,
        "registered log",
      );
      assert.equal(t.out.filter((l) => l.includes("registered as")).length, 2);
      t.signals.emit("SIGINT");
      assert.equal(await exit, 0);
      await coord.sessions[1]!.until(() => coord.sessions.every((s) => s.ended), 3000, "streams closed");
    } finally {
      coord.close();
    }
  });
});
