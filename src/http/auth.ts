/** Consumer authentication: `Authorization: Bearer <key>` or Anthropic's `x-api-key`. */
import type { IncomingHttpHeaders } from "node:http";
import { CoordinatorError } from "../errors/coordinator-error.js";
import type { AccountStore, Principal } from "../ledger/types.js";

/** Extracts the presented key, if any. */
export function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === "string") {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const x = headers["x-api-key"];
  return typeof x === "string" && x.length > 0 ? x : undefined;
}

/** Resolves the caller or throws 401. */
export async function authenticate(headers: IncomingHttpHeaders, accounts: AccountStore): Promise<Principal> {
  const key = presentedKey(headers);
  if (!key) {
    throw new CoordinatorError("unauthenticated", "missing API key: send 'Authorization: Bearer <key>' (or 'x-api-key')", { wireCode: "invalid_api_key" });
  }
  let p: Principal | undefined;
  try {
    p = await accounts.authenticate(key);
  } catch (e) {
    throw new CoordinatorError("unavailable", "authentication is temporarily unavailable; retry", { retryAfterS: 1, cause: e });
  }
  if (!p) throw new CoordinatorError("unauthenticated", "invalid API key", { wireCode: "invalid_api_key" });
  return p;
}
