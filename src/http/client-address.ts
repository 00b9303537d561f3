/**
 * Which client a request comes from, for per-client throttling (failed API-key attempts). Pure: the caller passes
 * the socket's peer address and the `X-Forwarded-For` header.
 *
 * `X-Forwarded-For` is written by the client as much as by proxies, so it is trusted only as far as the operator
 * says (`TRUSTED_PROXY_HOPS`): with N trusted proxies in front, each appends the address it received from, and the
 * client is the N-th entry from the right. With 0 (the default) the TCP peer is the client and the header is
 * ignored. IPv6 clients are grouped by their /64 (one host usually holds a whole /64, so per-address counting
 * would give it 2^64 fresh budgets); IPv4-mapped IPv6 (`::ffff:1.2.3.4`) counts as its IPv4 address.
 */
import { isIPv4, isIPv6 } from "node:net";

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

/** An IPv4 address as is, an IPv6 address as its /64, anything else unchanged (at most 64 characters). */
export function throttleKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  if (isIPv4(address)) return address;
  const bare = address.replace(/%.*$/, "");
  if (isIPv6(bare)) return `${expandIPv6(bare).slice(0, 4).join(":")}::/64`;
  return address.slice(0, 64);
}

/** `[2001:db8::1]:443` → `2001:db8::1`; `1.2.3.4:5678` → `1.2.3.4`; anything else unchanged. */
function stripPort(s: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(s);
  if (bracketed) return bracketed[1]!;
  const v4 = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(s);
  return v4 ? v4[1]! : s;
}

/** The eight 16-bit groups of a valid IPv6 address, lower-case without leading zeros. */
function expandIPv6(address: string): string[] {
  let text = address.toLowerCase();
  // A trailing dotted quad (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) is two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? (text.split("::") as [string, string]) : [text, undefined];
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill("0");
  return [...left, ...zeros, ...right].map((g) => parseInt(g, 16).toString(16));
}
