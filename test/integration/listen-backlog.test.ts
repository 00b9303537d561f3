/**
 * Both ports listen with LISTEN_BACKLOG as the kernel's accept queue, read back from the kernel itself (`ss` on
 * Linux, `netstat -L` on macOS); node's default of 511 made the capacity bench's connect storm lose up to 1,500
 * of 10,000 connects to resets (README "Limits"). The provider port is our listener handing connections to
 * grpc-js, so this also checks that a Mac registers and serves through it.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import OpenAI from "openai";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";

/** The accept backlog the kernel holds for the TCP listener on 127.0.0.1:`port`. */
function kernelBacklog(port: number): number {
  if (process.platform === "linux") {
    // `LISTEN 0 37 127.0.0.1:41234 0.0.0.0:*`: for a listener, Send-Q is the backlog.
    const out = execFileSync("ss", ["-ltnH", `sport = :${port}`], { encoding: "utf8" }).trim();
    const [, , sendQ] = out.split(/\s+/);
    return Number(sendQ);
  }
  if (process.platform === "darwin") {
    // `0/0/37  127.0.0.1.41234` (some versions put `tcp4` first): qlen/incqlen/maxqlen, then the address.
    const out = execFileSync("netstat", ["-Lan", "-p", "tcp"], { encoding: "utf8" });
    const line = out.split("\n").find((l) => l.trim().endsWith(`.${port}`));
    const queues = line
      ?.trim()
      .split(/\s+/)
      .find((f) => /^\d+\/\d+\/\d+$/.test(f));
    return Number(queues?.split("/")[2]);
  }
  throw new Error(`no way to read a listen backlog on ${process.platform}`);
}

describe("listen backlog", function () {
  this.timeout(60_000);
  let t: TestCoordinator;

  before(async () => {
    t = await startTestCoordinator({ config: { listenBacklog: 37 } });
  });
  after(async () => t?.close());

  it("queues LISTEN_BACKLOG connections on the provider and the consumer port", () => {
    assert.equal(kernelBacklog(t.coordinator.grpcPort), 37);
    assert.equal(kernelBacklog(t.coordinator.httpPort), 37);
  });

  it("registers Macs and serves completions through the provider listener", async () => {
    await t.waitForProviders(2);
    const openai = new OpenAI({ apiKey: t.apiKey, baseURL: t.apiBase, maxRetries: 0 });
    const r = await openai.chat.completions.create({
      model: "gpt-oss-20b",
      messages: [{ role: "user", content: "hello" }],
      max_tokens: 8,
    });
    assert.ok((r.choices[0]?.message.content ?? "").length > 0);
  });
});
