/**
 * Which image references a consumer may hand to a volunteer's Mac (issue 13, item 5). The coordinator never
 * fetches an image URL; the Mac does, from inside its owner's network. So a URL naming a loopback, private,
 * link-local or cloud-metadata address (`http://169.254.169.254/`) would make a stranger's Mac fetch from its
 * own LAN on a consumer's behalf. Pure: a string and a policy in, a verdict out ({@link classifyImageUrl}).
 *
 * Accepted by default: `https:` URLs whose host is a public DNS name or a public IP literal, and
 * `data:image/(png|jpeg|gif|webp);base64,…` URIs of valid base64 up to {@link ImageUrlPolicy.maxDataBytes}.
 * Refused: other schemes (`http:` unless allowed), credentials in the URL, IPv4 written in any form other than
 * dotted decimal (`http://2852039166/`, `0xa9.254.169.254`), IPv4-embedding IPv6 (mapped, compatible, NAT64,
 * Teredo), non-public addresses (see the tables below), single-label and internal-use names (`metadata`,
 * `localhost`, `*.local`, `*.internal`, `*.home.arpa`, …). Hosts on {@link ImageUrlPolicy.allowHosts} skip the
 * address and name checks (never the scheme, credential or encoding checks).
 *
 * Residual risk: a public DNS name can resolve to a private address when the Mac looks it up (DNS rebinding, or
 * names like `169.254.169.254.nip.io`). Only the fetcher can close that; the README says so.
 */

/** The operator's choices; defaults in {@link defaultImageUrlPolicy} (settings in src/config/config.ts). */
export interface ImageUrlPolicy {
  /** Accept `http:` URLs as well as `https:`. Default false. */
  readonly allowHttp: boolean;
  /**
   * Hosts accepted even when they name a non-public address or an internal-use name: canonical lower-case host
   * names and IP literals (IPv6 in brackets) matched exactly, and `*.example.com` entries matching any
   * subdomain of example.com. Build it with {@link parseAllowHosts}. Default none.
   */
  readonly allowHosts: readonly string[];
  /** Largest decoded image in a `data:` URI, bytes. Default 20 MiB. */
  readonly maxDataBytes: number;
}

/** Default decoded-size limit of a `data:` image, bytes (20 MiB). */
export const DEFAULT_MAX_IMAGE_DATA_BYTES = 20 * 1024 * 1024;

export const defaultImageUrlPolicy: ImageUrlPolicy = Object.freeze({
  allowHttp: false,
  allowHosts: Object.freeze([]),
  maxDataBytes: DEFAULT_MAX_IMAGE_DATA_BYTES,
});

/** Why a reference was refused (the `reason` of a refusal; the message says it for people). */
export type ImageUrlRefusalReason =
  | "scheme"
  | "malformed"
  | "credentials"
  | "non_canonical_ip"
  | "ipv4_in_ipv6"
  | "non_public_address"
  | "internal_name"
  | "data_uri";

export type ImageUrlVerdict = { kind: "allowed" } | { kind: "refused"; reason: ImageUrlRefusalReason; message: string };

const ALLOWED: ImageUrlVerdict = Object.freeze({ kind: "allowed" });
const refused = (reason: ImageUrlRefusalReason, message: string): ImageUrlVerdict => ({
  kind: "refused",
  reason,
  message,
});

/** Decides whether `url` (an image reference from a request) may be passed to a provider. */
export function classifyImageUrl(url: string, policy: ImageUrlPolicy): ImageUrlVerdict {
  if (/^data:/i.test(url)) return classifyDataUri(url, policy.maxDataBytes);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme !== "https" && !(scheme === "http" && policy.allowHttp)) {
    return refused(
      "scheme",
      policy.allowHttp ? "must be an http(s) URL or a base64 data URI" : "must be an https URL or a base64 data URI",
    );
  }
  // URL parsers disagree on backslashes, whitespace and control characters; the Mac's must see what we checked.
  if (!/^https?:\/\/[^/?#]/i.test(url) || /[\\\s\u0000-\u001f\u007f]/.test(url))
    return refused("malformed", "is not a well-formed URL");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return refused("malformed", "is not a well-formed URL");
  }
  const authority = /^[a-z]+:\/\/([^/?#]*)/i.exec(url)![1]!;
  if (authority.includes("@")) return refused("credentials", "must not carry credentials (user:password@)");
  const rawHost = (
    authority.startsWith("[") ? authority.slice(0, authority.indexOf("]") + 1) : authority.replace(/:[^:]*$/, "")
  ).toLowerCase();
  const host = parsed.hostname;
  const ipv4 = parseIpv4(host);
  // The WHATWG parser turns 2852039166, 0xa9fea9fe, 0251.0376.0251.0376 or %31%36%39... into 169.254.169.254;
  // another parser (the Mac's) may not, so only the one unambiguous form is passed on.
  if (ipv4 !== undefined && rawHost !== host)
    return refused(
      "non_canonical_ip",
      `names the IPv4 address ${host} in a non-standard form; write it as dotted decimal`,
    );
  if (hostAllowed(host, policy.allowHosts)) return ALLOWED;
  if (ipv4 !== undefined) {
    const range = ipv4Range(ipv4);
    return range ? refused("non_public_address", `names ${host}, a ${range} address`) : ALLOWED;
  }
  if (host.startsWith("[")) {
    const v6 = parseIpv6(host.slice(1, -1));
    if (!v6) return refused("malformed", "is not a well-formed URL");
    return classifyIpv6(host, v6);
  }
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  const internal = internalName(name);
  return internal ? refused("internal_name", `names the host '${name}', ${internal}`) : ALLOWED;
}

const DATA_URI = /^data:image\/(png|jpeg|gif|webp);base64,/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function classifyDataUri(url: string, maxBytes: number): ImageUrlVerdict {
  const head = DATA_URI.exec(url);
  if (!head) return refused("data_uri", "must be a data URI of the form data:image/(png|jpeg|gif|webp);base64,<data>");
  const data = url.slice(head[0].length);
  const padding = data.endsWith("==") ? 2 : data.endsWith("=") ? 1 : 0;
  const bytes = (data.length / 4) * 3 - padding;
  // Size first: the check is arithmetic, and a too-large image need not be scanned.
  if (bytes > maxBytes) return refused("data_uri", `holds an image of ${Math.ceil(bytes)} bytes (limit ${maxBytes})`);
  if (data.length === 0 || data.length % 4 !== 0 || !BASE64.test(data))
    return refused("data_uri", "must hold valid base64 image data (A-Z a-z 0-9 + /, padded with =, no whitespace)");
  return ALLOWED;
}

/** True when `host` (canonical) matches an allowlist entry: exactly, or as a subdomain of a `*.` entry. */
function hostAllowed(host: string, allow: readonly string[]): boolean {
  if (allow.length === 0) return false;
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  return allow.some((a) => (a.startsWith("*.") ? name.endsWith(a.slice(1)) : a === name));
}

/**
 * Parses `IMAGE_URL_ALLOW_HOSTS`: comma-separated host names, `*.suffix` wildcards and IP literals (IPv6 with
 * or without brackets), canonicalised as a URL parser would. Throws an Error naming the first bad entry.
 */
export function parseAllowHosts(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  const out: string[] = [];
  for (const entry of raw
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e.length > 0)) {
    const wildcard = entry.startsWith("*.");
    const bare = wildcard ? entry.slice(2) : entry;
    const literal = bare.includes(":") && !bare.startsWith("[") ? `[${bare}]` : bare;
    let host: string;
    try {
      if (/[/?#@\\%\s]/.test(bare)) throw new Error("not a bare host");
      host = new URL(`https://${literal}/`).hostname;
    } catch {
      throw new Error(`'${entry}' is not a host name or IP address`);
    }
    if (!/^[a-z0-9.\-[\]:]+$/.test(host) || (wildcard && (host.startsWith("[") || parseIpv4(host) !== undefined))) {
      throw new Error(`'${entry}' is not a host name or IP address${wildcard ? " (a wildcard takes a domain)" : ""}`);
    }
    out.push(wildcard ? `*.${host}` : host.replace(/\.$/, ""));
  }
  return out;
}

// ---- addresses ---------------------------------------------------------------------------------------------

/** Dotted-decimal IPv4 (the only form a WHATWG-parsed host takes) → 32-bit number. */
function parseIpv4(host: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return ((octets[0]! << 24) >>> 0) + (octets[1]! << 16) + (octets[2]! << 8) + octets[3]!;
}

/** IPv4 ranges that are not the public internet (RFC 6890 and friends), with what each is. */
const IPV4_NON_PUBLIC: readonly (readonly [string, number, string])[] = [
  ["0.0.0.0", 8, "unspecified ('this network')"],
  ["10.0.0.0", 8, "private (RFC 1918)"],
  ["100.64.0.0", 10, "carrier-grade NAT (RFC 6598)"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local (cloud metadata)"],
  ["172.16.0.0", 12, "private (RFC 1918)"],
  ["192.0.0.0", 24, "IETF protocol-assignment"],
  ["192.0.2.0", 24, "documentation"],
  ["192.168.0.0", 16, "private (RFC 1918)"],
  ["198.18.0.0", 15, "benchmarking"],
  ["198.51.100.0", 24, "documentation"],
  ["203.0.113.0", 24, "documentation"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved or broadcast"],
];

const ipv4Table = IPV4_NON_PUBLIC.map(([base, bits, what]) => ({
  base: parseIpv4(base)!,
  mask: bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0,
  what,
}));

/** What a non-public IPv4 address is, or undefined for a public one. */
function ipv4Range(a: number): string | undefined {
  return ipv4Table.find((r) => (a & r.mask) >>> 0 === r.base)?.what;
}

/** An IPv6 address (without brackets or zone) → its eight 16-bit groups; undefined when malformed. */
function parseIpv6(text: string): number[] | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (s: string): number[] | undefined => {
    if (s === "") return [];
    const out: number[] = [];
    const parts = s.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseIpv4(p);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else if (/^[0-9a-f]{1,4}$/i.test(p)) out.push(parseInt(p, 16));
      else return undefined;
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const fill = 8 - head.length - tail.length;
  return fill >= 1 ? [...head, ...new Array<number>(fill).fill(0), ...tail] : undefined;
}

function classifyIpv6(host: string, g: number[]): ImageUrlVerdict {
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zero(0, 8)) return refused("non_public_address", `names ${host}, the unspecified address`);
  if (zero(0, 7) && g[7] === 1) return refused("non_public_address", `names ${host}, the loopback address`);
  // Each of these reaches an IPv4 address by another road; the IPv4 rules would have to be re-applied to the
  // embedded address, and fetchers differ in whether they unwrap it. No image needs them.
  if (zero(0, 5) && (g[5] === 0xffff || g[5] === 0))
    return refused("ipv4_in_ipv6", `names ${host}, an IPv4-mapped or IPv4-compatible IPv6 address`);
  if (g[0] === 0x64 && g[1] === 0xff9b)
    return refused("ipv4_in_ipv6", `names ${host}, a NAT64 (IPv4-embedding) address`);
  if (g[0] === 0x2001 && g[1] === 0) return refused("ipv4_in_ipv6", `names ${host}, a Teredo (IPv4-embedding) address`);
  if (g[0] === 0x2002) {
    const v4 = ((g[1]! << 16) >>> 0) + g[2]!;
    const range = ipv4Range(v4);
    if (range) return refused("ipv4_in_ipv6", `names ${host}, a 6to4 address embedding a ${range} IPv4 address`);
  }
  const first = g[0]!;
  if ((first & 0xfe00) === 0xfc00)
    return refused("non_public_address", `names ${host}, a unique-local (private) address`);
  if ((first & 0xffc0) === 0xfe80) return refused("non_public_address", `names ${host}, a link-local address`);
  if ((first & 0xffc0) === 0xfec0) return refused("non_public_address", `names ${host}, a site-local address`);
  if ((first & 0xff00) === 0xff00) return refused("non_public_address", `names ${host}, a multicast address`);
  if (first === 0x2001 && g[1] === 0xdb8)
    return refused("non_public_address", `names ${host}, a documentation address`);
  if (first === 0x100 && zero(1, 4)) return refused("non_public_address", `names ${host}, a discard-only address`);
  return ALLOWED;
}

// ---- names -------------------------------------------------------------------------------------------------

/** Cloud metadata services reachable by name (their addresses are link-local and refused above too). */
const METADATA_NAMES = new Set([
  "metadata.google.internal",
  "metadata.goog",
  "instance-data",
  "instance-data.ec2.internal",
]);

/** Suffixes reserved for local or internal use (RFC 6761, RFC 6762, RFC 8375, ICANN's `.internal`, `.lan`). */
const INTERNAL_SUFFIXES = ["localhost", "local", "internal", "home.arpa", "arpa", "lan", "localdomain", "intranet"];

/** Why a host name is internal, or undefined for an ordinary public name. */
function internalName(name: string): string | undefined {
  if (METADATA_NAMES.has(name)) return "a cloud metadata service";
  if (!name.includes("."))
    return "a single-label name (resolved through the fetcher's local search domains, like 'metadata' or 'localhost')";
  const suffix = INTERNAL_SUFFIXES.find((s) => name === s || name.endsWith(`.${s}`));
  return suffix ? `a name under '.${suffix}', which is for local or internal use` : undefined;
}
