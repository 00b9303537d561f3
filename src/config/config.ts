/**
 * Configuration: the only reader of environment variables. Every setting has an env name, an equivalent
 * command-line flag (`HTTP_PORT` ⇔ `--http-port`), a unit in its name and a documented default, all in one
 * table ({@link settings}) that also renders `--help` and the README's configuration section.
 */

import { parseAllowHosts } from "../dialects/shared/image-url-policy.js";

import { apiKeyFormatProblem } from "../ledger/api-key-format.js";
import { FlagError, parseFlags as parseCommandFlags } from "../util/parse-flags.js";

import { type Setting, type Settings, settings, type ValueOf } from "./settings.js";

/** The resolved configuration (frozen). Optional settings without a default are `undefined`. */
export type Config = {
  readonly [K in keyof Settings]: Settings[K]["default"] extends undefined
    ? ValueOf<Settings[K]> | undefined
    : ValueOf<Settings[K]>;
};

/**
 * Shortest ADMIN_KEY accepted. The admin API can mint credit and issue keys, and its key is compared without a
 * database lookup, so a guessable one is guessed at network speed; 24 characters of a random alphabet is well
 * beyond that (`openssl rand -hex 16` gives 32).
 */
export const MIN_ADMIN_KEY_CHARS = 24;

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/**
 * Refuses an ADMIN_KEY the admin API should not be guarded by (checked by the commands that serve it, `serve` and
 * `demo`, not by every command that reads the configuration).
 */
export function checkAdminKey(adminKey: string | undefined): void {
  if (adminKey === undefined) return;
  if (/\s/.test(adminKey)) throw new ConfigError("ADMIN_KEY must not contain whitespace (e.g. openssl rand -hex 16)");
  if (adminKey.length < MIN_ADMIN_KEY_CHARS) {
    throw new ConfigError(
      `ADMIN_KEY must be at least ${MIN_ADMIN_KEY_CHARS} characters (e.g. openssl rand -hex 16), got ${adminKey.length}`,
    );
  }
}

/** `HTTP_PORT` → `--http-port`. */
export function flagOf(env: string): string {
  return `--${env.toLowerCase().replace(/_/g, "-")}`;
}

/**
 * Resolves the configuration from flags (highest precedence) and the environment. Unknown flags, malformed
 * numbers and out-of-range values throw ConfigError with a message naming the setting.
 */
export function loadConfig(env: NodeJS.ProcessEnv, argv: readonly string[] = []): Config {
  const fromFlags = parseFlags(argv);
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(settings) as [string, Setting][]) {
    const raw = fromFlags.get(s.env) ?? env[s.env];
    out[key] = raw === undefined || raw === "" ? s.default : parseValue(s, raw);
  }
  const c = out as Config;
  for (const p of ["httpPort", "grpcPort"] as const) {
    if (c[p] < 0 || c[p] > 65_535) throw new ConfigError(`${settings[p].env} must be a port (0-65535), got ${c[p]}`);
  }
  if (c.speculativeFraction < 0 || c.speculativeFraction >= 1)
    throw new ConfigError(`SPECULATIVE_FRACTION must be in [0, 1), got ${c.speculativeFraction}`);
  if (c.ledgerHolderStaleMs < 1_000)
    throw new ConfigError(
      `LEDGER_HOLDER_STALE_MS must be >= 1000 (processes heartbeat every second), got ${c.ledgerHolderStaleMs}`,
    );
  if (c.replicas < 1) throw new ConfigError(`COORDINATOR_REPLICAS must be >= 1`);
  checkCluster(c);
  // A cluster shares its buckets unless told otherwise: per-process shares under-admit any uneven load.
  (c as { rateLimitStore: string }).rateLimitStore =
    c.rateLimitStore ?? (c.cluster !== undefined ? "postgres" : "memory");
  if (c.rateLimitStore !== "memory" && c.rateLimitStore !== "postgres")
    throw new ConfigError(`RATE_LIMIT_STORE must be memory|postgres, got ${c.rateLimitStore}`);
  if (c.devApiKey !== undefined && apiKeyFormatProblem(c.devApiKey)) {
    throw new ConfigError(`DEV_API_KEY must start with 'sk-' and be a valid key: ${apiKeyFormatProblem(c.devApiKey)}`);
  }
  if (!["debug", "info", "warn", "error"].includes(c.logLevel))
    throw new ConfigError(`LOG_LEVEL must be debug|info|warn|error, got ${c.logLevel}`);
  for (const p of boundedWorkSettings) {
    if (c[p] < 1) throw new ConfigError(`${settings[p].env} must be >= 1, got ${c[p]}`);
  }
  if (c.maxInflightBodyBytes < c.maxBodyBytes) {
    throw new ConfigError(
      `MAX_INFLIGHT_BODY_BYTES (${c.maxInflightBodyBytes}) must be >= MAX_BODY_BYTES (${c.maxBodyBytes}), or the largest body could never be read`,
    );
  }
  try {
    parseAllowHosts(c.imageUrlAllowHosts);
  } catch (e) {
    throw new ConfigError(`IMAGE_URL_ALLOW_HOSTS: ${(e as Error).message}`);
  }
  for (const p of authSettingsAtLeastOne) {
    if (!(c[p] >= 1)) throw new ConfigError(`${settings[p].env} must be >= 1, got ${c[p]}`);
  }
  for (const p of [
    "apiKeyCacheTtlMs",
    "apiKeyNegativeCacheTtlMs",
    "apiKeyStaleIfErrorMs",
    "trustedProxyHops",
  ] as const) {
    if (c[p] < 0) throw new ConfigError(`${settings[p].env} must be >= 0, got ${c[p]}`);
  }
  if (!(c.authFailureRefillPerS > 0))
    throw new ConfigError(`AUTH_FAILURE_REFILL_PER_S must be > 0, got ${c.authFailureRefillPerS}`);
  if (c.httpHeadersTimeoutMs > c.httpRequestTimeoutMs) {
    throw new ConfigError(
      `HTTP_HEADERS_TIMEOUT_MS (${c.httpHeadersTimeoutMs}) must be <= HTTP_REQUEST_TIMEOUT_MS (${c.httpRequestTimeoutMs})`,
    );
  }
  return Object.freeze(c);
}

/** Limits and timeouts that must be positive (0 would refuse everything, not turn the limit off). */
const boundedWorkSettings = [
  "maxBodyBytes",
  "adminMaxBodyBytes",
  "maxInflightBodyBytes",
  "maxJsonDepth",
  "maxJsonArrayLength",
  "maxJsonObjectKeys",
  "maxJsonStringChars",
  "maxRequestMessages",
  "maxRequestTools",
  "maxRequestImages",
  "maxUserFieldChars",
  "maxImageDataBytes",
  "httpHeadersTimeoutMs",
  "httpRequestTimeoutMs",
  "httpKeepAliveTimeoutMs",
  "httpIdleSocketTimeoutMs",
  "httpMaxConnections",
  "listenBacklog",
  "providerMaxConnections",
  "providerMaxConnectionsPerAddress",
  "providerIdleConnectionMs",
] as const satisfies readonly (keyof Config)[];

/** Authentication bounds that must be positive (a cache of 0 keys or a burst of 0 attempts is not "off"). */
const authSettingsAtLeastOne = [
  "apiKeyCacheMaxKeys",
  "apiKeyNegativeCacheMaxKeys",
  "authFailureBurst",
  "authFailureMaxAddresses",
] as const satisfies readonly (keyof Config)[];

/** Every setting's flag as a string option, parsed by the commands' one flag parser; errors name the flag. */
function parseFlags(argv: readonly string[]): Map<string, string> {
  const options: Record<string, { type: "string" }> = {};
  const envOf = new Map<string, string>();
  for (const s of Object.values(settings) as Setting[]) {
    const name = flagOf(s.env).slice(2);
    options[name] = { type: "string" };
    envOf.set(name, s.env);
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseCommandFlags(argv, options);
  } catch (e) {
    throw e instanceof FlagError ? settingsFlagError(e) : e;
  }
  const out = new Map<string, string>();
  for (const [name, value] of Object.entries(values)) if (typeof value === "string") out.set(envOf.get(name)!, value);
  return out;
}

/** A flag mistake, worded as the settings' own. */
function settingsFlagError(e: FlagError): ConfigError {
  switch (e.problem) {
    case "unknown_flag":
      return new ConfigError(`unknown flag '${e.flag}' (see --help)`);
    case "unexpected_argument":
      return new ConfigError(`unexpected argument '${e.flag}'`);
    case "needs_value":
      return new ConfigError(`flag ${e.flag} needs a value`);
    case "takes_no_value":
      return new ConfigError(`flag ${e.flag} takes no value`);
  }
}

function parseValue(s: Setting, raw: string): unknown {
  switch (s.kind) {
    case "int": {
      const n = Number(raw.replace(/_/g, ""));
      if (!Number.isInteger(n)) throw new ConfigError(`${s.env} must be an integer, got '${raw}'`);
      return n;
    }
    case "number": {
      const n = Number(raw);
      if (!Number.isFinite(n)) throw new ConfigError(`${s.env} must be a number, got '${raw}'`);
      return n;
    }
    case "bool":
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new ConfigError(`${s.env} must be true or false, got '${raw}'`);
    default:
      return raw;
  }
}

/** The `--help` text for the settings. */
export function settingsHelp(): string {
  const rows = (Object.values(settings) as Setting[]).map((s) => {
    const d = s.default === undefined ? "" : ` (default ${s.default})`;
    return `  ${flagOf(s.env).padEnd(36)} ${s.env.padEnd(32)} ${s.help}${d}`;
  });
  return rows.join("\n");
}

/** The README's configuration table (`coordinator settings --markdown` prints it). */
export function settingsMarkdown(): string {
  const rows = (Object.values(settings) as Setting[]).map(
    (s) =>
      `| \`${s.env}\` | \`${flagOf(s.env)}\` | ${s.default === undefined ? "—" : `\`${s.default}\``} | ${s.help} |`,
  );
  return ["| Environment variable | Flag | Default | Meaning |", "|---|---|---|---|", ...rows].join("\n");
}

/** The cluster settings: a NATS URL, a subject-safe prefix, and clocks whose order makes the failure rules hold. */
function checkCluster(c: Config): void {
  if (c.cluster !== undefined && !/^(nats|tls):\/\/[^\s]+$/.test(c.cluster))
    throw new ConfigError(`CLUSTER must be a NATS URL (nats://host:4222), got ${c.cluster}`);
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(c.clusterPrefix))
    throw new ConfigError(`CLUSTER_PREFIX must be 1-32 letters, digits, _ or -, got ${c.clusterPrefix}`);
  for (const p of ["clusterHeartbeatMs", "clusterSnapshotMs", "clusterRefreshMs", "clusterDispatchTimeoutMs"] as const)
    if (c[p] < 1) throw new ConfigError(`${settings[p].env} must be >= 1, got ${c[p]}`);
  if (!(c.clusterForwardMargin >= 0))
    throw new ConfigError(`${settings.clusterForwardMargin.env} must be >= 0, got ${c.clusterForwardMargin}`);
  // A node must miss at least two beats before it is presumed dead, and a running request at least two beats
  // before it is given up: one late beat on a busy machine must not fail a request over.
  if (c.clusterNodeTimeoutMs < 2 * c.clusterHeartbeatMs)
    throw new ConfigError(
      `CLUSTER_NODE_TIMEOUT_MS (${c.clusterNodeTimeoutMs}) must be >= 2 x CLUSTER_HEARTBEAT_MS (${c.clusterHeartbeatMs})`,
    );
  // The owner must have had its chance to answer before a forward is given up for silence.
  if (c.clusterSilenceMs <= c.clusterDispatchTimeoutMs)
    throw new ConfigError(
      `CLUSTER_SILENCE_MS (${c.clusterSilenceMs}) must be > CLUSTER_DISPATCH_TIMEOUT_MS (${c.clusterDispatchTimeoutMs})`,
    );
  if (c.clusterSilenceMs < 2 * c.clusterHeartbeatMs)
    throw new ConfigError(
      `CLUSTER_SILENCE_MS (${c.clusterSilenceMs}) must be >= 2 x CLUSTER_HEARTBEAT_MS (${c.clusterHeartbeatMs})`,
    );
}
