/** The image URL settings (issue 13, item 5): defaults, parsing, validation, and the policy built from them. */
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../../src/config/config.js";
import { defaultImageUrlPolicy } from "../../../src/dialects/shared/image-url-policy.js";
import { requestLimitsFrom } from "../../../src/http/request-limits.js";

describe("image URL settings", () => {
  it("default to https and data URIs only, no exceptions, 20 MiB decoded data", () => {
    const c = loadConfig({});
    assert.deepEqual(
      [c.imageUrlAllowHttp, c.imageUrlAllowHosts, c.maxImageDataBytes],
      [false, undefined, 20 * 1024 * 1024],
    );
    assert.deepEqual(requestLimitsFrom(c).imageUrls, defaultImageUrlPolicy);
  });

  it("build the policy from the environment and flags", () => {
    const c = loadConfig(
      { IMAGE_URL_ALLOW_HTTP: "true", IMAGE_URL_ALLOW_HOSTS: "Images.Corp.Example,*.cdn.internal, 10.0.0.8" },
      ["--max-image-data-bytes", "1_048_576"],
    );
    assert.deepEqual(requestLimitsFrom(c).imageUrls, {
      allowHttp: true,
      allowHosts: ["images.corp.example", "*.cdn.internal", "10.0.0.8"],
      maxDataBytes: 1_048_576,
    });
  });

  const bad: [Record<string, string>, RegExp][] = [
    [
      { IMAGE_URL_ALLOW_HOSTS: "https://images.example.com/" },
      /IMAGE_URL_ALLOW_HOSTS: 'https:\/\/images\.example\.com\/' is not a host name/,
    ],
    [
      { IMAGE_URL_ALLOW_HOSTS: "ok.example, *.10.0.0.1" },
      /IMAGE_URL_ALLOW_HOSTS: '\*\.10\.0\.0\.1'.*wildcard takes a domain/,
    ],
    [{ IMAGE_URL_ALLOW_HTTP: "sometimes" }, /IMAGE_URL_ALLOW_HTTP must be true or false/],
    [{ MAX_IMAGE_DATA_BYTES: "0" }, /MAX_IMAGE_DATA_BYTES must be >= 1/],
  ];
  for (const [env, message] of bad) {
    it(`rejects ${JSON.stringify(env)} with a clear message`, () => {
      assert.throws(
        () => loadConfig(env),
        (e: unknown) => e instanceof ConfigError && message.test(e.message),
      );
    });
  }
});
