#!/usr/bin/env node
// Entry point of the `coordinator` command. The sources are TypeScript run through tsx (a runtime
// dependency), so there is no build step between a clone and a running coordinator.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2), process.env);
