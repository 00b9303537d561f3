/**
 * The image URL classifier (issue 13, item 5): a table of references and what the default policy, and a policy
 * with operator settings, decide for each.
 */
import assert from "node:assert/strict";
import {
  classifyImageUrl,
  defaultImageUrlPolicy,
  parseAllowHosts,
  type ImageUrlPolicy,
  type ImageUrlRefusalReason,
} from "../../../../src/dialects/shared/image-url-policy.js";

const PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

describe("classifyImageUrl", () => {
  const allowed: string[] = [
    "https://example.com/cat.png",
    "https://EXAMPLE.com/cat.png?size=large#x",
    "https://cdn.example.co.uk:8443/a/b.jpg",
    "https://8.8.8.8/image.png",
    "https://[2606:4700:4700::1111]/image.png",
    "https://bücher.de/bild.png",
    "https://169.254.169.254.example.com/not-an-address.png", // a name, not an address (DNS is the Mac's; see README)
    `data:image/png;base64,${PNG_1PX}`,
    "data:image/jpeg;base64,AAAA",
    "data:image/gif;base64,R0lGODlhAQABAAAAACw=",
    "data:IMAGE/WEBP;base64,UklGRg==",
  ];
  for (const url of allowed) {
    it(`allows ${url.slice(0, 60)}`, () =>
      assert.deepEqual(classifyImageUrl(url, defaultImageUrlPolicy), { kind: "allowed" }));
  }

  const refusedCases: [string, ImageUrlRefusalReason, RegExp?][] = [
    // schemes
    ["http://example.com/cat.png", "scheme", /https URL/],
    ["ftp://example.com/cat.png", "scheme"],
    ["file:///etc/passwd", "scheme"],
    ["javascript:alert(1)", "scheme"],
    ["//example.com/cat.png", "scheme"],
    ["example.com/cat.png", "scheme"],
    // malformed or ambiguous between parsers
    ["https:/example.com/cat.png", "malformed"],
    ["https:\\\\example.com/cat.png", "malformed"],
    ["https://evil.com\\@good.com/", "malformed"],
    [" https://example.com/", "scheme"],
    ["https://exa mple.com/", "malformed"],
    ["https://example.com/\n", "malformed"],
    ["https://[fe80::1%25en0]/", "malformed"],
    ["https://example.com:99999/", "malformed"],
    // credentials
    ["https://user:secret@example.com/cat.png", "credentials"],
    ["https://user@example.com/cat.png", "credentials"],
    ["https://@example.com/cat.png", "credentials"],
    // non-standard IPv4 forms
    ["https://2852039166/", "non_canonical_ip", /169\.254\.169\.254/],
    ["https://0xa9fea9fe/", "non_canonical_ip"],
    ["https://0xa9.0xfe.0xa9.0xfe/", "non_canonical_ip"],
    ["https://0251.0376.0251.0376/", "non_canonical_ip"],
    ["https://127.1/", "non_canonical_ip"],
    ["https://0/", "non_canonical_ip"],
    ["https://8.8.8.8./", "non_canonical_ip"],
    ["https://%38.8.8.8/", "non_canonical_ip"],
    // non-public IPv4
    ["https://169.254.169.254/latest/meta-data/", "non_public_address", /link-local/],
    ["https://127.0.0.1/", "non_public_address", /loopback/],
    ["https://127.255.255.254:8080/", "non_public_address", /loopback/],
    ["https://10.0.0.1/", "non_public_address", /private/],
    ["https://172.16.0.1/", "non_public_address", /private/],
    ["https://172.31.255.255/", "non_public_address", /private/],
    ["https://192.168.1.1/", "non_public_address", /private/],
    ["https://100.64.0.1/", "non_public_address", /carrier-grade NAT/],
    ["https://100.100.100.200/", "non_public_address", /carrier-grade NAT/], // Alibaba Cloud metadata
    ["https://0.0.0.0/", "non_public_address", /unspecified/],
    ["https://224.0.0.1/", "non_public_address", /multicast/],
    ["https://255.255.255.255/", "non_public_address", /reserved or broadcast/],
    ["https://192.0.0.170/", "non_public_address"],
    ["https://198.18.0.1/", "non_public_address"],
    // IPv6
    ["https://[::1]/", "non_public_address", /loopback/],
    ["https://[0:0:0:0:0:0:0:1]/", "non_public_address", /loopback/],
    ["https://[::]/", "non_public_address", /unspecified/],
    ["https://[fd00:ec2::254]/", "non_public_address", /unique-local/], // AWS metadata over IPv6
    ["https://[fc00::1]/", "non_public_address", /unique-local/],
    ["https://[fe80::1]/", "non_public_address", /link-local/],
    ["https://[febf::1]/", "non_public_address", /link-local/],
    ["https://[fec0::1]/", "non_public_address", /site-local/],
    ["https://[ff02::1]/", "non_public_address", /multicast/],
    ["https://[2001:db8::1]/", "non_public_address", /documentation/],
    ["https://[::ffff:169.254.169.254]/", "ipv4_in_ipv6", /IPv4-mapped/],
    ["https://[::ffff:8.8.8.8]/", "ipv4_in_ipv6"],
    ["https://[::169.254.169.254]/", "ipv4_in_ipv6"],
    ["https://[64:ff9b::a9fe:a9fe]/", "ipv4_in_ipv6", /NAT64/],
    ["https://[2001:0:4136:e378::1]/", "ipv4_in_ipv6", /Teredo/],
    ["https://[2002:a9fe:a9fe::1]/", "ipv4_in_ipv6", /6to4.*link-local/],
    // names
    ["https://metadata.google.internal/computeMetadata/v1/", "internal_name", /cloud metadata/],
    ["https://metadata/computeMetadata/v1/", "internal_name", /single-label/],
    ["https://metadata.goog/", "internal_name", /cloud metadata/],
    ["https://instance-data.ec2.internal/", "internal_name"],
    ["https://localhost/", "internal_name"],
    ["https://LOCALHOST./", "internal_name"],
    ["https://%6c%6fcalhost/", "internal_name"],
    ["https://foo.localhost/", "internal_name", /localhost/],
    ["https://printer.local/", "internal_name", /\.local'/],
    ["https://nas.home.arpa/", "internal_name", /home\.arpa/],
    ["https://router.lan/", "internal_name"],
    ["https://db.corp.internal/", "internal_name"],
    // data URIs
    ["data:image/svg+xml;base64,PHN2Zz4=", "data_uri", /png\|jpeg\|gif\|webp/],
    ["data:image/png,rawbytes", "data_uri"],
    ["data:text/html;base64,PGgxPg==", "data_uri"],
    ["data:image/png;base64,", "data_uri", /valid base64/],
    ["data:image/png;base64,AAA", "data_uri", /valid base64/],
    ["data:image/png;base64,AA AA", "data_uri", /valid base64/],
    ["data:image/png;base64,AA\nAA", "data_uri", /valid base64/],
    ["data:image/png;base64,AA-_", "data_uri", /valid base64/],
    ["data:image/png;base64,A===", "data_uri", /valid base64/],
  ];
  for (const [url, reason, message] of refusedCases) {
    it(`refuses ${JSON.stringify(url).slice(0, 60)} (${reason})`, () => {
      const v = classifyImageUrl(url, defaultImageUrlPolicy);
      assert.equal(v.kind, "refused");
      assert.equal(v.kind === "refused" && v.reason, reason, v.kind === "refused" ? v.message : "");
      if (message) assert.match(v.kind === "refused" ? v.message : "", message);
    });
  }

  it("refuses a data URI whose decoded image is larger than the limit, before scanning it", () => {
    const policy: ImageUrlPolicy = { ...defaultImageUrlPolicy, maxDataBytes: 30 };
    assert.deepEqual(classifyImageUrl(`data:image/png;base64,${"A".repeat(40)}`, policy), { kind: "allowed" }); // 30 bytes
    const v = classifyImageUrl(`data:image/png;base64,${"A".repeat(44)}`, policy); // 33 bytes
    assert.equal(v.kind === "refused" && v.reason, "data_uri");
    assert.match(v.kind === "refused" ? v.message : "", /33 bytes \(limit 30\)/);
    // Invalid characters past the limit are not what the caller hears about: the size is.
    assert.match(
      (classifyImageUrl(`data:image/png;base64,${"!".repeat(400)}`, policy) as { message: string }).message,
      /limit 30/,
    );
  });

  it("accepts http: only when the operator allows it, and still refuses its non-public hosts", () => {
    const policy: ImageUrlPolicy = { ...defaultImageUrlPolicy, allowHttp: true };
    assert.deepEqual(classifyImageUrl("http://example.com/a.png", policy), { kind: "allowed" });
    assert.equal(
      (classifyImageUrl("http://169.254.169.254/", policy) as { reason: string }).reason,
      "non_public_address",
    );
    assert.equal((classifyImageUrl("ftp://example.com/a.png", policy) as { reason: string }).reason, "scheme");
  });

  it("lets allowlisted hosts past the address and name checks, never past credentials or odd IPv4 forms", () => {
    const policy: ImageUrlPolicy = {
      ...defaultImageUrlPolicy,
      allowHosts: parseAllowHosts("images.internal, 10.1.2.3, *.corp.example, fd00::5"),
    };
    for (const url of [
      "https://images.internal/a.png",
      "https://10.1.2.3/a.png",
      "https://img.corp.example/a.png",
      "https://a.b.corp.example/a.png",
      "https://[fd00::5]/a.png",
    ]) {
      assert.deepEqual(classifyImageUrl(url, policy), { kind: "allowed" }, url);
    }
    assert.equal(
      (classifyImageUrl("https://corp.example.internal/a.png", policy) as { reason: string }).reason,
      "internal_name",
    );
    assert.equal(
      (classifyImageUrl("https://10.1.2.4/a.png", policy) as { reason: string }).reason,
      "non_public_address",
    );
    assert.equal(
      (classifyImageUrl("https://167838211/a.png", policy) as { reason: string }).reason,
      "non_canonical_ip",
    ); // 10.1.2.3
    assert.equal(
      (classifyImageUrl("https://u:p@images.internal/a.png", policy) as { reason: string }).reason,
      "credentials",
    );
    assert.equal((classifyImageUrl("http://images.internal/a.png", policy) as { reason: string }).reason, "scheme");
  });
});

describe("parseAllowHosts", () => {
  it("canonicalises names, wildcards and IP literals", () => {
    assert.deepEqual(parseAllowHosts(undefined), []);
    assert.deepEqual(parseAllowHosts(""), []);
    assert.deepEqual(parseAllowHosts(" Images.Example.COM , *.CDN.example ,10.0.0.7, [FD00::1], fe80::0:1, host. "), [
      "images.example.com",
      "*.cdn.example",
      "10.0.0.7",
      "[fd00::1]",
      "[fe80::1]",
      "host",
    ]);
  });

  for (const bad of ["https://x.com", "x.com/path", "a b", "*.10.0.0.1", "*.[::1]", "user@host", "[zz::1]"]) {
    it(`refuses ${JSON.stringify(bad)} with a message naming it`, () => {
      assert.throws(
        () => parseAllowHosts(bad),
        (e: unknown) => e instanceof Error && e.message.includes(`'${bad}'`),
      );
    });
  }
});
