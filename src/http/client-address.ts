/**
 * Which client a request comes from, for per-client throttling (failed API-key attempts). Pure: the caller passes
 * the socket's peer address and the `X-Forwarded-For` header.
 *
 * `X-Forwarded-For` is written by the client as much as by proxies, so it is trusted only as far as the operator
 * says (`TRUSTED_PROXY_HOPS`): with N trusted proxies in front, each appends the address it received from, and the
 * client is the N-th entry from the right. With 0 (the default) the TCP peer is the client and the header is
 * ignored. The address is then keyed by {@link throttleKey} (src/util/throttle-key.ts): IPv6 by its /64.
 */
import { throttleKey } from "../util/throttle-key.js";

/**
 * The throttling key of a request's client: an IPv4 address, an IPv6 /64 (`2001:db8:1:2::/64`), or the raw text
 * when it is neither (e.g. a unix socket: "unknown").
 */
export function clientAddress(
  remoteAddress: string | undefined,
  forwardedFor: string | string[] | undefined,
  trustedProxyHops: number,
): string {
  let address = remoteAddress ?? "unknown";
  if (trustedProxyHops > 0 && forwardedFor !== undefined) {
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor)
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    // The peer is the last trusted proxy; each trusted proxy before it added one entry on the right.
    const picked = hops.length === 0 ? undefined : hops[Math.max(0, hops.length - trustedProxyHops)];
    if (picked !== undefined) address = stripPort(picked);
  }
  return throttleKey(address);
}

/** `[2001:db8::1]:443` → `2001:db8::1`; `1.2.3.4:5678` → `1.2.3.4`; anything else unchanged. */
function stripPort(s: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(s);
  if (bracketed) return bracketed[1]!;
  const v4 = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(s);
  return v4 ? v4[1]! : s;
}
