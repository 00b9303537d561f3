/**
 * Child process of the capacity benchmark: opens `count` {@link LightProvider} streams to the coordinator at
 * `ratePerS`, heartbeats each every `heartbeatMs` (staggered), reports progress on stderr, and when its stdin
 * closes, closes every stream and prints one JSON line: { opened, registered, ended, retries, retryDetails, heartbeats, endDetails }.
 *
 * argv[2]: JSON { address, token, count, ratePerS, heartbeatMs, serialPrefix, model }.
 */
import { heartbeatBytes, LightProvider, registerBytes } from "./light-provider.js";

interface Args {
  address: string;
  token: string;
  count: number;
  ratePerS: number;
  heartbeatMs: number;
  serialPrefix: string;
  model: string;
}

const a = JSON.parse(process.argv[2] ?? "{}") as Args;
const hb = heartbeatBytes(a.model);
const providers: LightProvider[] = [];
let registered = 0;
let ended = 0;
let heartbeats = 0;
const tickMs = 100;

// Staggered heartbeats: each tick serves the providers whose index falls in this tick's phase.
const phases = Math.max(1, Math.round(a.heartbeatMs / tickMs));
let tick = 0;
const hbTimer = setInterval(() => {
  const phase = tick++ % phases;
  for (let i = phase; i < providers.length; i += phases) {
    const p = providers[i]!;
    if (p.registered && !p.ended) {
      p.heartbeat(hb);
      heartbeats++;
    }
  }
}, tickMs);

const opener = setInterval(() => {
  const batch = Math.max(1, Math.round((a.ratePerS * tickMs) / 1000));
  for (let k = 0; k < batch && providers.length < a.count; k++) {
    const serial = `${a.serialPrefix}-${providers.length}`;
    providers.push(
      new LightProvider(
        a.address,
        serial,
        registerBytes(a.token, serial, a.model),
        () => registered++,
        () => ended++,
      ),
    );
  }
  if (providers.length >= a.count) clearInterval(opener);
}, tickMs);

const progress = setInterval(
  () =>
    process.stderr.write(`${a.serialPrefix}: opened ${providers.length}, registered ${registered}, ended ${ended}\n`),
  2_000,
);

process.stdin.resume();
process.stdin.on("end", () => {
  clearInterval(opener);
  clearInterval(hbTimer);
  clearInterval(progress);
  const details: Record<string, number> = {};
  for (const p of providers) if (p.ended && p.endDetails) details[p.endDetails] = (details[p.endDetails] ?? 0) + 1;
  const retries = providers.reduce((n, p) => n + p.retries, 0);
  const retryDetails: Record<string, number> = {};
  for (const p of providers) for (const d of p.retryDetails) retryDetails[d] = (retryDetails[d] ?? 0) + 1;
  const out = { opened: providers.length, registered, ended, retries, retryDetails, heartbeats, endDetails: details };
  for (const p of providers) p.close();
  process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0));
});
