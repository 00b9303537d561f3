/**
 * Replies that come from another process, the way PostgreSQL's do: `reply(v)` writes a byte through `cat` and
 * resolves with `v` once it is read back. While this process's event loop is blocked the byte waits in the kernel,
 * so a test can reproduce "the reply arrived in time but the loop was busy past the deadline".
 */
import { spawn } from "node:child_process";
import { once } from "node:events";

export interface PipeReply {
  reply<T>(value: T | Promise<T>): Promise<T>;
  close(): void;
}

export async function startPipeReply(): Promise<PipeReply> {
  const cat = spawn("cat", [], { stdio: ["pipe", "pipe", "ignore"] });
  await once(cat, "spawn");
  return {
    reply: <T>(value: T | Promise<T>) =>
      new Promise<T>((resolve) => {
        cat.stdout!.once("data", () => resolve(value));
        cat.stdin!.write("x");
      }),
    close: () => cat.kill(),
  };
}

/** Blocks the event loop for `ms` (a CPU spike on a shared box). */
export function busyFor(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until);
}
