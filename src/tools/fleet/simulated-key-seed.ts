/**
 * The identity of a simulated Mac: its provider key comes from a seed derived from its serial, so test
 * providers and benches that speak the protocol by hand can prove the same identity as a SimulatedMac.
 */
import { createHash } from "node:crypto";

/**
 * The simulator's key seed for a serial: deterministic, so a simulated Mac keeps its identity across restarts
 * like a real one keeping its key on disk. Anyone who knows the serial can derive it, which is fine for a
 * simulator and why real providers generate theirs randomly.
 */
export function simulatedKeySeed(serial: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update("simulated-mac-key\0").update(serial).digest());
}
