#!/usr/bin/env node
// Entry point of the `coordinator` command. The sources are TypeScript run through tsx (a runtime
// dependency), so there is no build step between a clone and a running coordinator.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
const code = await main(process.argv.slice(2), process.env);
process.exitCode = code;
// Every command closes what it opened; should a stray handle remain (a failed start, a library timer), do not
// hang: exit once stdout has had a moment to flush.
setTimeout(() => process.exit(code), 2_000).unref();
