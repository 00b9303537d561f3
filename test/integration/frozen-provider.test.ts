/**
 * A provider whose process freezes (SIGSTOP: TCP stays up, nothing answers) is detected by gRPC keepalive in
 * seconds, long before the heartbeat timeout, and its in-flight work fails over.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { eventually } from "../support/http.js";

const bin = fileURLToPath(new URL("../../bin/coordinator.js", import.meta.url));

describe("frozen provider detection", function () {
  this.timeout(40_000);
  let t: TestCoordinator;
  let child: ChildProcess | undefined;
  afterEach(async () => {
    if (child && child.exitCode === null) {
      child.kill("SIGKILL");
      await new Promise((r) => child!.once("exit", r));
    }
    await t?.close();
  });

  it("evicts a SIGSTOPped provider through keepalive within seconds, well before the heartbeat timeout", async () => {
    t = await startTestCoordinator({ config: { heartbeatTimeoutMs: 120_000, grpcKeepaliveMs: 1_000 }, macs: [] });
    child = spawn(
      process.execPath,
      [
        bin,
        "fleet",
        "--coordinator",
        `127.0.0.1:${t.coordinator.grpcPort}`,
        "--count",
        "1",
        "--instant",
        "--models",
        "gpt-oss-20b",
        "--token",
        t.providerToken,
      ],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    await eventually(() => t.coordinator.registry.size === 1, 20_000, `the fleet process to register (${stderr})`);
    const frozenAt = Date.now();
    child.kill("SIGSTOP");
    await eventually(() => t.coordinator.registry.size === 0, 15_000, "keepalive to evict the frozen provider");
    const detectedMs = Date.now() - frozenAt;
    assert.ok(detectedMs < 10_000, `detected in ${detectedMs} ms`);
    child.kill("SIGCONT");
  });
});
