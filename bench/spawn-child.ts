/**
 * Runs a TypeScript module of bench/ in a child Node process (through tsx) and returns its last stdout line
 * parsed as JSON. Benchmarks use children for load generators and simulated providers so their CPU work does
 * not run on the measured process's event loop.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** A running child with its parsed output. */
export interface BenchChild<T> {
  child: ChildProcess;
  /** Resolves with the last JSON line on stdout when the child exits 0; rejects otherwise. */
  result: Promise<T>;
}

/** Spawns `node --import tsx bench/<module>` with `args`; stderr lines go to `onStderr`. */
export function spawnBenchChild<T>(
  module: string,
  args: string[],
  o: { onStderr?: (line: string) => void; nodeArgs?: string[] } = {},
): BenchChild<T> {
  const file = fileURLToPath(new URL(module, import.meta.url));
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), "--import", "tsx", file, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    err += d;
    const lines = err.split("\n");
    err = lines.pop() ?? "";
    for (const l of lines) o.onStderr?.(l);
  });
  const result = new Promise<T>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      const last = out.trim().split("\n").pop() ?? "";
      if (code !== 0) return reject(new Error(`${module} exited ${code ?? signal}: ${err.slice(-500)}`));
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${module} printed no JSON result: ${out.slice(-300)}`));
      }
    });
  });
  return { child, result };
}
