import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { checkAdminKey, ConfigError, flagOf, loadConfig, MIN_ADMIN_KEY_CHARS } from "../../../src/config/config.js";
import { settings } from "../../../src/config/settings.js";
import { MIN_API_KEY_SECRET_CHARS } from "../../../src/ledger/api-key-format.js";
import { defaultSchedulerOptions } from "../../../src/scheduler/scheduler-options.js";

describe("loadConfig", () => {
  it("applies documented defaults", () => {
    const c = loadConfig({});
    assert.equal(c.httpPort, 8080);
    assert.equal(c.grpcPort, 50051);
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.speculativeFraction, 0.5);
    assert.equal(c.toolsFloorWaived, true);
    assert.ok(Object.isFrozen(c));
  });

  it('bounds work per request and per connection by default (README "Limits")', () => {
    const c = loadConfig({});
    assert.deepEqual(
      [
        c.maxBodyBytes,
        c.adminMaxBodyBytes,
        c.maxInflightBodyBytes,
        c.maxJsonDepth,
        c.maxJsonArrayLength,
        c.maxJsonObjectKeys,
        c.maxJsonStringChars,
      ],
      [16 * 1024 * 1024, 64 * 1024, 256 * 1024 * 1024, 64, 100_000, 10_000, 8 * 1024 * 1024],
    );
    assert.deepEqual(
      [c.maxRequestMessages, c.maxRequestTools, c.maxRequestImages, c.maxUserFieldChars],
      [10_000, 128, 100, 256],
    );
    assert.deepEqual(
      [
        c.httpHeadersTimeoutMs,
        c.httpRequestTimeoutMs,
        c.httpKeepAliveTimeoutMs,
        c.httpIdleSocketTimeoutMs,
        c.httpCloseLingerMs,
        c.listenBacklog,
        c.providerMaxConnections,
        c.providerMaxConnectionsPerAddress,
        c.providerIdleConnectionMs,
        c.httpMaxConnections,
      ],
      [20_000, 60_000, 65_000, 30_000, 500, 4_096, 20_000, 256, 30_000, 10_000],
    );
  });

  it('bounds authentication work and its caches by default (README "Limits")', () => {
    const c = loadConfig({});
    assert.deepEqual(
      [
        c.apiKeyCacheTtlMs,
        c.apiKeyNegativeCacheTtlMs,
        c.apiKeyStaleIfErrorMs,
        c.apiKeyCacheMaxKeys,
        c.apiKeyNegativeCacheMaxKeys,
      ],
      [5_000, 30_000, 3_600_000, 100_000, 10_000],
    );
    assert.deepEqual(
      [c.authFailureBurst, c.authFailureRefillPerS, c.authFailureMaxAddresses, c.trustedProxyHops],
      [20, 2, 100_000, 0],
    );
  });

  it("reads the environment, and flags win over it", () => {
    const c = loadConfig({ HTTP_PORT: "9000", TOOLS_FLOOR_WAIVED: "false", QUEUE_WAIT_MS: "1_000" }, [
      "--http-port",
      "9100",
      "--grpc-port=6000",
    ]);
    assert.equal(c.httpPort, 9100);
    assert.equal(c.grpcPort, 6000);
    assert.equal(c.toolsFloorWaived, false);
    assert.equal(c.queueWaitMs, 1000);
  });

  it(`checkAdminKey: ${MIN_ADMIN_KEY_CHARS} characters pass, one fewer or any whitespace is refused, unset passes`, () => {
    checkAdminKey("k".repeat(MIN_ADMIN_KEY_CHARS));
    checkAdminKey(undefined);
    assert.throws(
      () => checkAdminKey("k".repeat(MIN_ADMIN_KEY_CHARS - 1)),
      (e: unknown) => e instanceof ConfigError && /ADMIN_KEY must be at least 24 characters.*got 23$/.test(e.message),
    );
    assert.throws(
      () => checkAdminKey(`${"k".repeat(MIN_ADMIN_KEY_CHARS)} k`),
      (e: unknown) => e instanceof ConfigError && /ADMIN_KEY must not contain whitespace/.test(e.message),
    );
    // Read by every command; refused only by the ones that serve the admin API.
    assert.equal(loadConfig({ ADMIN_KEY: "short" }).adminKey, "short");
  });

  const bad: [Record<string, string>, string[], RegExp][] = [
    [{ HTTP_PORT: "eighty" }, [], /HTTP_PORT must be an integer/],
    [{ HTTP_PORT: "70000" }, [], /HTTP_PORT must be a port/],
    [{ SPECULATIVE_FRACTION: "1.5" }, [], /SPECULATIVE_FRACTION/],
    [{ TOOLS_FLOOR_WAIVED: "maybe" }, [], /true or false/],
    [{ DEV_API_KEY: "abc" }, [], /must start with 'sk-'/],
    [
      { DEV_API_KEY: "sk-" },
      [],
      new RegExp(
        `DEV_API_KEY must start with 'sk-' and be a valid key: .*${MIN_API_KEY_SECRET_CHARS} to 256 characters`,
      ),
    ],
    [{ AUTH_FAILURE_BURST: "0" }, [], /AUTH_FAILURE_BURST must be >= 1/],
    [{ AUTH_FAILURE_REFILL_PER_S: "0" }, [], /AUTH_FAILURE_REFILL_PER_S must be > 0/],
    [{ API_KEY_CACHE_MAX_KEYS: "0" }, [], /API_KEY_CACHE_MAX_KEYS must be >= 1/],
    [{ API_KEY_STALE_IF_ERROR_MS: "-1" }, [], /API_KEY_STALE_IF_ERROR_MS must be >= 0/],
    [{ TRUSTED_PROXY_HOPS: "-1" }, [], /TRUSTED_PROXY_HOPS must be >= 0/],
    [{}, ["--no-such-flag", "1"], /unknown flag '--no-such-flag'/],
    [{}, ["--http-port"], /needs a value/],
    [{}, ["--http-port", "--grpc-port", "3"], /flag --http-port needs a value/],
    [{}, ["--http-port=8081=x"], /HTTP_PORT must be an integer/],
    [{}, ["positional"], /unexpected argument/],
    [{ MAX_JSON_DEPTH: "0" }, [], /MAX_JSON_DEPTH must be >= 1/],
    [{ ADMIN_MAX_BODY_BYTES: "-1" }, [], /ADMIN_MAX_BODY_BYTES must be >= 1/],
    [{ LISTEN_BACKLOG: "0" }, [], /LISTEN_BACKLOG must be >= 1/],
    [{ PROVIDER_MAX_CONNECTIONS: "0" }, [], /PROVIDER_MAX_CONNECTIONS must be >= 1/],
    [{ PROVIDER_MAX_CONNECTIONS_PER_ADDRESS: "0" }, [], /PROVIDER_MAX_CONNECTIONS_PER_ADDRESS must be >= 1/],
    [{ PROVIDER_IDLE_CONNECTION_MS: "0" }, [], /PROVIDER_IDLE_CONNECTION_MS must be >= 1/],
    [{ HTTP_MAX_CONNECTIONS: "0" }, [], /HTTP_MAX_CONNECTIONS must be >= 1/],
    [
      { MAX_INFLIGHT_BODY_BYTES: "1000", MAX_BODY_BYTES: "2000" },
      [],
      /MAX_INFLIGHT_BODY_BYTES \(1000\) must be >= MAX_BODY_BYTES/,
    ],
    [{ CLUSTER: "127.0.0.1:4222" }, [], /CLUSTER must be a NATS URL/],
    [{}, ["--cluster", "nats://h:4222", "--cluster-prefix", "a.b"], /CLUSTER_PREFIX must be 1-32 letters/],
    [
      { CLUSTER_HEARTBEAT_MS: "1000", CLUSTER_NODE_TIMEOUT_MS: "1999" },
      [],
      /CLUSTER_NODE_TIMEOUT_MS \(1999\) must be >= 2 x CLUSTER_HEARTBEAT_MS \(1000\)/,
    ],
    [
      { CLUSTER_HEARTBEAT_MS: "1000", CLUSTER_SILENCE_MS: "1999", CLUSTER_DISPATCH_TIMEOUT_MS: "500" },
      [],
      /CLUSTER_SILENCE_MS \(1999\) must be >= 2 x CLUSTER_HEARTBEAT_MS \(1000\)/,
    ],
    [{ CLUSTER_SNAPSHOT_MS: "0" }, [], /CLUSTER_SNAPSHOT_MS must be >= 1/],
    [{ CLUSTER_FORWARD_MARGIN: "-0.1" }, [], /CLUSTER_FORWARD_MARGIN must be >= 0/],
    [{ CLUSTER_FORWARD_MARGIN: "-0.000001" }, [], /CLUSTER_FORWARD_MARGIN must be >= 0/],
    [
      { CLUSTER_SILENCE_MS: "2000", CLUSTER_DISPATCH_TIMEOUT_MS: "2000" },
      [],
      /CLUSTER_SILENCE_MS \(2000\) must be > CLUSTER_DISPATCH_TIMEOUT_MS \(2000\)/,
    ],
    [
      { HTTP_HEADERS_TIMEOUT_MS: "30000", HTTP_REQUEST_TIMEOUT_MS: "20000" },
      [],
      /HTTP_HEADERS_TIMEOUT_MS \(30000\) must be <= HTTP_REQUEST_TIMEOUT_MS/,
    ],
  ];
  for (const [env, argv, message] of bad) {
    it(`rejects ${JSON.stringify(env)} ${argv.join(" ")} with a clear message`, () => {
      assert.throws(
        () => loadConfig(env, argv),
        (e: unknown) => e instanceof ConfigError && message.test(e.message),
      );
    });
  }

  it("shares rate-limit buckets through PostgreSQL in a cluster unless RATE_LIMIT_STORE says otherwise", () => {
    assert.equal(loadConfig({}).rateLimitStore, "memory");
    assert.equal(loadConfig({ CLUSTER: "nats://127.0.0.1:4222" }).rateLimitStore, "postgres");
    assert.equal(loadConfig({ CLUSTER: "nats://127.0.0.1:4222", RATE_LIMIT_STORE: "memory" }).rateLimitStore, "memory");
    assert.equal(loadConfig({ RATE_LIMIT_STORE: "postgres" }).rateLimitStore, "postgres");
  });

  it("accepts cluster clocks at their bounds (node timeout and silence two heartbeats, silence just past the dispatch timeout)", () => {
    const c = loadConfig({
      CLUSTER: "nats://127.0.0.1:4222",
      CLUSTER_HEARTBEAT_MS: "500",
      CLUSTER_NODE_TIMEOUT_MS: "1000",
      CLUSTER_SILENCE_MS: "1000",
      CLUSTER_DISPATCH_TIMEOUT_MS: "999",
    });
    assert.equal(c.cluster, "nats://127.0.0.1:4222");
    assert.equal(c.clusterNodeTimeoutMs, 1000);
    assert.equal(c.clusterPrefix, "coord");
  });

  it("accepts CLUSTER_FORWARD_MARGIN at its bound (0: forward past the near-tie window) and by flag", () => {
    assert.equal(loadConfig({ CLUSTER_FORWARD_MARGIN: "0" }).clusterForwardMargin, 0);
    assert.equal(loadConfig({}, ["--cluster-forward-margin", "0.25"]).clusterForwardMargin, 0.25);
    // The pure scheduler keeps its own default (the simulator and unit tests use it): the two must not drift.
    assert.equal(loadConfig({}).clusterForwardMargin, defaultSchedulerOptions.forwardMarginFraction);
  });

  it("is documented in the README: every environment variable and flag", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    for (const s of Object.values(settings)) {
      assert.ok(readme.includes(`\`${s.env}\``), `README documents ${s.env}`);
      assert.ok(readme.includes(`\`${flagOf(s.env)}\``), `README documents ${flagOf(s.env)}`);
    }
  });
});
