/** Consumer authentication: `Authorization: Bearer <key>` or Anthropic's `x-api-key`. */
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { CoordinatorError } from "../errors/coordinator-error.js";
import type { AccountStore, Principal } from "../accounts/types.js";
import { count } from "../telemetry/metrics.js";
import type { Clock } from "../util/clock.js";
import type { AuthFailureThrottle } from "./auth-failure-throttle.js";
import { clientAddress } from "./client-address.js";

/** What {@link authenticate} needs. */
export interface AuthDeps {
  accounts: AccountStore;
  /** Failed attempts per client address; past its budget a key the cache cannot vouch for is refused unread. */
  authFailures: AuthFailureThrottle;
  /** Reverse proxies in front whose `X-Forwarded-For` entries are trusted (0: the TCP peer is the client). */
  trustedProxyHops: number;
  clock: Clock;
}

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

/**
 * Resolves the caller or throws: 401 for a missing or unknown key; 429 + Retry-After, before any database query,
 * when the client address has used up its failed attempts (a key verified moments ago still passes: the cache
 * vouches for it, so a sprayer behind the same NAT does not lock out its neighbours); 503 + Retry-After when the
 * database cannot be asked and the key was not verified recently enough to be served from the cache.
 */
export async function authenticate(req: IncomingMessage, deps: AuthDeps): Promise<Principal> {
  const key = presentedKey(req.headers);
  if (!key) {
    throw new CoordinatorError(
      "unauthenticated",
      "missing API key: send 'Authorization: Bearer <key>' (or 'x-api-key')",
      { wireCode: "invalid_api_key" },
    );
  }
  const cached = deps.accounts.authenticateCached(key);
  if (cached) return cached;
  const client = clientAddress(req.socket.remoteAddress, req.headers["x-forwarded-for"], deps.trustedProxyHops);
  const gate = deps.authFailures.check(client, deps.clock.nowMs());
  if (!gate.allowed) {
    count("http.auth_throttled");
    throw new CoordinatorError("rate_limited", "too many failed API-key attempts from this address; retry later", {
      wireCode: "too_many_failed_auth_attempts",
      retryAfterS: gate.retryAfterMs / 1000,
    });
  }
  let p: Principal | undefined;
  try {
    p = await deps.accounts.authenticate(key);
  } catch (e) {
    throw new CoordinatorError("unavailable", "authentication is temporarily unavailable; retry", {
      retryAfterS: 1,
      cause: e,
    });
  }
  if (!p) {
    deps.authFailures.recordFailure(client, deps.clock.nowMs());
    throw new CoordinatorError("unauthenticated", "invalid API key", { wireCode: "invalid_api_key" });
  }
  return p;
}
