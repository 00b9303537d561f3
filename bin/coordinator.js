#!/usr/bin/env node
// Entry point of the `coordinator` command in a clone: the TypeScript sources run through tsx (a runtime
// dependency), so there is no build step between a clone and a running coordinator. A deployment runs the
// compiled `node dist/src/cli/entry.js` instead (`npm run build`); both run src/cli/entry.ts.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/entry.ts");
