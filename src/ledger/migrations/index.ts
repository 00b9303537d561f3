/** The in-code migration list, in order. Add `NNNN_name.ts` files here; never edit a landed migration. */
import type { Migration } from "kysely";
import * as m0001 from "./0001_initial.js";
import * as m0002 from "./0002_untrusted_edges.js";
import * as m0003 from "./0003_limit_overrides.js";
import * as m0004 from "./0004_model_aliases.js";
import * as m0005 from "./0005_limit_buckets.js";
import * as m0006 from "./0006_account_create_requests.js";

export const migrations: Record<string, Migration> = {
  "0001_initial": m0001,
  "0002_untrusted_edges": m0002,
  "0003_limit_overrides": m0003,
  "0004_model_aliases": m0004,
  "0005_limit_buckets": m0005,
  "0006_account_create_requests": m0006,
};
