/** A DogStatsD client that records each metric as its wire line (`name:value|type|#tag:v,…`) into `lines`. */
import type { StatsdLike } from "../../src/telemetry/metrics.js";

export function fakeStatsd(lines: string[]): StatsdLike {
  const line = (t: string) => (s: string, v: number, tags?: Record<string, string>) =>
    lines.push(
      `${s}:${v}|${t}${
        tags
          ? `|#${Object.entries(tags)
              .map(([k, x]) => `${k}:${x}`)
              .join(",")}`
          : ""
      }`,
    );
  return { increment: line("c"), distribution: line("d"), gauge: line("g") };
}
