/**
 * The settings table (env name, kind, default, help; `--help` order) and the types derived from it. Reading,
 * validating and rendering the settings is config.ts's job.
 */

export interface Setting {
  env: string;
  kind: "int" | "number" | "string" | "bool";
  default: string | number | boolean | undefined;
  help: string;
}

/** Every setting. Order is the order of `--help`. */
export const settings = {
  httpPort: {
    env: "HTTP_PORT",
    kind: "int",
    default: 8080,
    help: "Port of the consumer HTTP API (OpenAI/Anthropic REST + Connect admin).",
  },
  grpcPort: { env: "GRPC_PORT", kind: "int", default: 50051, help: "Port of the provider gRPC service." },
  host: { env: "HOST", kind: "string", default: "0.0.0.0", help: "Interface both servers bind to." },
  listenBacklog: {
    env: "LISTEN_BACKLOG",
    kind: "int",
    default: 4_096,
    help: "Connections the kernel queues on each port before the coordinator accepts them (capped by net.core.somaxconn); past it a connection storm, such as every Mac reconnecting after a restart, is reset and backs off.",
  },
  databaseUrl: {
    env: "DATABASE_URL",
    kind: "string",
    default: undefined,
    help: "PostgreSQL URL. Unset: an embedded PostgreSQL is started in DATA_DIR.",
  },
  dataDir: { env: "DATA_DIR", kind: "string", default: "./.data", help: "Folder for the embedded PostgreSQL cluster." },
  adminKey: {
    env: "ADMIN_KEY",
    kind: "string",
    default: undefined,
    help: "Bearer token for the admin Connect service: at least 24 characters, no whitespace (e.g. `openssl rand -hex 16`). Required by `serve`; `demo` generates one.",
  },
  devApiKey: {
    env: "DEV_API_KEY",
    kind: "string",
    default: undefined,
    help: "`demo` only: fixed value of the printed consumer API key (`sk-` + at least 20 characters of A-Z a-z 0-9 _ -).",
  },
  logLevel: { env: "LOG_LEVEL", kind: "string", default: "info", help: "debug | info | warn | error." },
  ddAgentHost: {
    env: "DD_AGENT_HOST",
    kind: "string",
    default: undefined,
    help: "DogStatsD host; metrics are sent over UDP when set.",
  },
  ddDogstatsdPort: { env: "DD_DOGSTATSD_PORT", kind: "int", default: 8125, help: "DogStatsD port." },
  ddEnv: { env: "DD_ENV", kind: "string", default: undefined, help: "`env:` tag on every DogStatsD metric." },
  metricsPrometheus: {
    env: "METRICS_PROMETHEUS",
    kind: "bool",
    default: false,
    help: "Serve Prometheus text metrics on `GET /metrics` of the consumer port (unauthenticated: expose it only to your scraper). Default: off.",
  },
  metricsGaugeIntervalMs: {
    env: "METRICS_GAUGE_INTERVAL_MS",
    kind: "int",
    default: 10_000,
    help: "Gauges (queue depth, fleet per model, connected providers) are re-sent to DogStatsD this often, not only on change. 0 disables.",
  },
  otelEndpoint: {
    env: "OTEL_EXPORTER_OTLP_ENDPOINT",
    kind: "string",
    default: undefined,
    help: "OTLP endpoint; the OpenTelemetry SDK (metrics + traces) starts when set. Other OTEL_* variables are honoured by the SDK.",
  },
  heartbeatIntervalMs: {
    env: "HEARTBEAT_INTERVAL_MS",
    kind: "int",
    default: 5_000,
    help: "Heartbeat interval asked of providers.",
  },
  heartbeatTimeoutMs: {
    env: "HEARTBEAT_TIMEOUT_MS",
    kind: "int",
    default: 20_000,
    help: "Providers silent this long are evicted (frozen TCP peers are caught sooner by gRPC keepalive).",
  },
  providerChallengeIntervalMs: {
    env: "PROVIDER_CHALLENGE_INTERVAL_MS",
    kind: "int",
    default: 300_000,
    help: "A live provider session proves its Ed25519 key again this often (a wrong signature fences it).",
  },
  providerChallengeTimeoutMs: {
    env: "PROVIDER_CHALLENGE_TIMEOUT_MS",
    kind: "int",
    default: 30_000,
    help: "A live provider must answer a key challenge within this long, or its session ends.",
  },
  providerMaxMachinesPerAccount: {
    env: "PROVIDER_MAX_MACHINES_PER_ACCOUNT",
    kind: "int",
    default: 10_000,
    help: "Provider machines (serials) one account may own; registering one more is refused with RESOURCE_EXHAUSTED until the owner forgets one.",
  },
  providerRevocationCheckMs: {
    env: "PROVIDER_REVOCATION_CHECK_MS",
    kind: "int",
    default: 5_000,
    help: "How often live provider sessions' tokens are checked for revocation (revoking through the admin API ends them at once).",
  },
  providerMaxConnections: {
    env: "PROVIDER_MAX_CONNECTIONS",
    kind: "int",
    default: 20_000,
    help: "Open connections on the provider port at most; past it a new connection is closed at once (counted in provider.connections_refused, logged every 10 s at most).",
  },
  providerMaxConnectionsPerAddress: {
    env: "PROVIDER_MAX_CONNECTIONS_PER_ADDRESS",
    kind: "int",
    default: 256,
    help: "Open connections on the provider port from one client address (IPv6: its /64) at most, so one host cannot take every place; raise it for many Macs behind one NAT address, or behind an L4 balancer that hides client addresses.",
  },
  providerIdleConnectionMs: {
    env: "PROVIDER_IDLE_CONNECTION_MS",
    kind: "int",
    default: 30_000,
    help: "A provider-port connection with no stream open for this long is closed (an HTTP/2 client answers keepalive pings, so one that never opens a stream would be held forever).",
  },
  grpcKeepaliveMs: {
    env: "GRPC_KEEPALIVE_MS",
    kind: "int",
    default: 5_000,
    help: "gRPC keepalive ping interval on provider streams.",
  },
  firstTokenBaseMs: { env: "FIRST_TOKEN_BASE_MS", kind: "int", default: 5_000, help: "First-token deadline base." },
  firstTokenPerPromptTokenMs: {
    env: "FIRST_TOKEN_PER_PROMPT_TOKEN_MS",
    kind: "number",
    default: 1,
    help: "First-token deadline growth per estimated prompt token.",
  },
  inferenceTimeoutMs: {
    env: "INFERENCE_TIMEOUT_MS",
    kind: "int",
    default: 600_000,
    help: "Wait for content after InferenceAccepted (model loading).",
  },
  preambleContentTimeoutMs: {
    env: "PREAMBLE_CONTENT_TIMEOUT_MS",
    kind: "int",
    default: 90_000,
    help: "Preamble-to-content budget past the first-token deadline.",
  },
  idleTimeoutMs: {
    env: "IDLE_TIMEOUT_MS",
    kind: "int",
    default: 120_000,
    help: "Longest gap between chunks once streaming.",
  },
  speculativeFraction: {
    env: "SPECULATIVE_FRACTION",
    kind: "number",
    default: 0.5,
    help: "Race a backup provider at this fraction of the first-token deadline (0 = off).",
  },
  maxDispatchAttempts: {
    env: "MAX_DISPATCH_ATTEMPTS",
    kind: "int",
    default: 6,
    help: "Provider attempts per request (primary, backup, failovers).",
  },
  queueLimit: {
    env: "QUEUE_LIMIT",
    kind: "int",
    default: 10,
    help: "Requests waiting per model when all capable providers are busy.",
  },
  queueWaitMs: { env: "QUEUE_WAIT_MS", kind: "int", default: 120_000, help: "Longest queue wait before 429." },
  toolsVersionFloor: {
    env: "TOOLS_VERSION_FLOOR",
    kind: "string",
    default: "0.6.3",
    help: "Minimum provider version for tool requests when TOOLS_FLOOR_WAIVED=false.",
  },
  toolsFloorWaived: {
    env: "TOOLS_FLOOR_WAIVED",
    kind: "bool",
    default: true,
    help: "Central tool-schema repair makes old providers safe for tools, so the floor is waived.",
  },
  corsAllowOrigin: {
    env: "CORS_ALLOW_ORIGIN",
    kind: "string",
    default: "*",
    help: "Access-Control-Allow-Origin for browser callers of the consumer API (keys are bearer tokens, never cookies, so * is safe); `off` disables CORS.",
  },
  maxBodyBytes: {
    env: "MAX_BODY_BYTES",
    kind: "int",
    default: 16 * 1024 * 1024,
    help: "Largest accepted request body.",
  },
  // Bounded work before trust, and per request (README "Limits"; issue 13).
  adminMaxBodyBytes: {
    env: "ADMIN_MAX_BODY_BYTES",
    kind: "int",
    default: 64 * 1024,
    help: "Largest accepted admin (Connect) request body; larger → `resource_exhausted`. Read only after the admin key is checked.",
  },
  maxInflightBodyBytes: {
    env: "MAX_INFLIGHT_BODY_BYTES",
    kind: "int",
    default: 256 * 1024 * 1024,
    help: "Request-body bytes held at once across all open consumer requests; past it → 503 with Retry-After.",
  },
  maxJsonDepth: {
    env: "MAX_JSON_DEPTH",
    kind: "int",
    default: 64,
    help: "Deepest nesting of arrays and objects in a request body (the body itself is level 1); deeper → 400.",
  },
  maxJsonArrayLength: {
    env: "MAX_JSON_ARRAY_LENGTH",
    kind: "int",
    default: 100_000,
    help: "Most elements of any one JSON array in a request body; more → 400.",
  },
  maxJsonObjectKeys: {
    env: "MAX_JSON_OBJECT_KEYS",
    kind: "int",
    default: 10_000,
    help: "Most members of any one JSON object in a request body; more → 400.",
  },
  maxJsonStringChars: {
    env: "MAX_JSON_STRING_CHARS",
    kind: "int",
    default: 8 * 1024 * 1024,
    help: "Longest JSON string in a request body, in characters as written (a base64 image included); longer → 400.",
  },
  maxRequestMessages: {
    env: "MAX_REQUEST_MESSAGES",
    kind: "int",
    default: 10_000,
    help: "Most messages per inference request (after translation to the chat form), and most tool calls across them; more → 400.",
  },
  maxRequestTools: {
    env: "MAX_REQUEST_TOOLS",
    kind: "int",
    default: 128,
    help: "Most tools per inference request; more → 400.",
  },
  maxRequestImages: {
    env: "MAX_REQUEST_IMAGES",
    kind: "int",
    default: 100,
    help: "Most images per inference request; more → 400.",
  },
  maxUserFieldChars: {
    env: "MAX_USER_FIELD_CHARS",
    kind: "int",
    default: 256,
    help: "Longest `user`, `prompt_cache_key`, `safety_identifier` or `metadata.user_id`; longer → 400.",
  },
  // Image references handed to Macs (README "Limits"; issue 13, item 5).
  maxImageDataBytes: {
    env: "MAX_IMAGE_DATA_BYTES",
    kind: "int",
    default: 20 * 1024 * 1024,
    help: "Largest decoded image in a `data:image/...;base64,` URI; larger → 400 `invalid_image_url`.",
  },
  imageUrlAllowHttp: {
    env: "IMAGE_URL_ALLOW_HTTP",
    kind: "bool",
    default: false,
    help: "Accept plain `http:` image URLs (the Mac fetches them unencrypted). Default: only `https:` URLs and base64 `data:` URIs.",
  },
  imageUrlAllowHosts: {
    env: "IMAGE_URL_ALLOW_HOSTS",
    kind: "string",
    default: undefined,
    help: "Comma-separated image hosts accepted although they name a private, loopback, link-local or internal address (exact names or IP literals, or `*.example.com` for its subdomains). Credentials, non-standard IPv4 forms and the scheme rule still apply.",
  },
  httpHeadersTimeoutMs: {
    env: "HTTP_HEADERS_TIMEOUT_MS",
    kind: "int",
    default: 20_000,
    help: "Longest time to receive a request's headers; then 408 and the connection closes.",
  },
  httpRequestTimeoutMs: {
    env: "HTTP_REQUEST_TIMEOUT_MS",
    kind: "int",
    default: 60_000,
    help: "Longest time to receive a whole request (headers and body); then 408 and the connection closes. Does not limit the response: streams may run longer.",
  },
  httpKeepAliveTimeoutMs: {
    env: "HTTP_KEEP_ALIVE_TIMEOUT_MS",
    kind: "int",
    default: 65_000,
    help: "Idle keep-alive connections close after this long (longer than the usual 60 s load-balancer idle timeout, so the balancer closes first); every response announces it (Keep-Alive: timeout=...), so a client's pool drops the connection before the server does.",
  },
  httpCloseLingerMs: {
    env: "HTTP_CLOSE_LINGER_MS",
    kind: "int",
    default: 500,
    help: "After refusing an upload early (401, 413, 503), how long the rest of it is discarded before the connection is cut, so the refusal reaches the caller instead of a reset.",
  },
  httpMaxConnections: {
    env: "HTTP_MAX_CONNECTIONS",
    kind: "int",
    default: 10_000,
    help: "Open connections on the consumer port at most; past it a new connection is closed at once (counted in http.connections_refused, logged every 10 s at most). No per-address bound: aggregators send from few addresses.",
  },
  httpIdleSocketTimeoutMs: {
    env: "HTTP_IDLE_SOCKET_TIMEOUT_MS",
    kind: "int",
    default: 30_000,
    help: "A connection silent this long is closed when the client is the silent one (a stalled upload, a response it stopped reading); a request waiting on a Mac or a stream between chunks is kept.",
  },
  // Authentication under abuse and outages (README "Limits"; issue 13).
  apiKeyCacheTtlMs: {
    env: "API_KEY_CACHE_TTL_MS",
    kind: "int",
    default: 5_000,
    help: "A resolved API key is trusted this long before it is looked up again: a key revoked through another coordinator process stops working within it (revoking through this one takes effect at once).",
  },
  apiKeyNegativeCacheTtlMs: {
    env: "API_KEY_NEGATIVE_CACHE_TTL_MS",
    kind: "int",
    default: 30_000,
    help: "An unknown API key is remembered as unknown this long: repeats get 401 without a database query (0 = off). A key issued through another process is refused here for up to this long if it was presented before it existed.",
  },
  apiKeyStaleIfErrorMs: {
    env: "API_KEY_STALE_IF_ERROR_MS",
    kind: "int",
    default: 3_600_000,
    help: "While the database cannot be queried, a key this process verified within this long keeps working (requests are then served from leased credit); other keys get 503 with Retry-After (0 = off).",
  },
  apiKeyCacheMaxKeys: {
    env: "API_KEY_CACHE_MAX_KEYS",
    kind: "int",
    default: 100_000,
    help: "Known API keys remembered per process (the least recently used is forgotten first and looked up again when next used).",
  },
  apiKeyNegativeCacheMaxKeys: {
    env: "API_KEY_NEGATIVE_CACHE_MAX_KEYS",
    kind: "int",
    default: 10_000,
    help: "Unknown API keys remembered per process, kept apart from the known ones so a spray of wrong keys never evicts a real key.",
  },
  authFailureBurst: {
    env: "AUTH_FAILURE_BURST",
    kind: "int",
    default: 20,
    help: "Failed API-key attempts a client address may make at once; past it, keys not already verified get 429 with Retry-After and no database query. The provider port counts invalid provider tokens the same way (its own buckets; past it, Register gets RESOURCE_EXHAUSTED). IPv6 clients are counted per /64.",
  },
  authFailureRefillPerS: {
    env: "AUTH_FAILURE_REFILL_PER_S",
    kind: "number",
    default: 2,
    help: "Failed API-key attempts a client address regains per second (its sustained rate of wrong keys).",
  },
  authFailureMaxAddresses: {
    env: "AUTH_FAILURE_MAX_ADDRESSES",
    kind: "int",
    default: 100_000,
    help: "Client addresses whose failed attempts are remembered (the least recently failing is forgotten first, which only forgives it).",
  },
  trustedProxyHops: {
    env: "TRUSTED_PROXY_HOPS",
    kind: "int",
    default: 0,
    help: "Reverse proxies in front of the consumer API whose X-Forwarded-For entries are trusted for the client address (failed-attempt throttling). 0: the TCP peer is the client and X-Forwarded-For is ignored.",
  },
  ledgerLeaseMicroUsd: {
    env: "LEDGER_LEASE_MICRO_USD",
    kind: "int",
    default: 2_000_000,
    help: "Credit drawn per lease from an account's balance (µUSD).",
  },
  ledgerOverdraftMicroUsd: {
    env: "LEDGER_OVERDRAFT_MICRO_USD",
    kind: "int",
    default: 0,
    help: "How far below zero an account may be leased (µUSD).",
  },
  ledgerHolderStaleMs: {
    env: "LEDGER_HOLDER_STALE_MS",
    kind: "int",
    default: 60_000,
    help: "A ledger process silent this long is presumed dead; its open reservations are released and its leases closed.",
  },
  replicas: {
    env: "COORDINATOR_REPLICAS",
    kind: "int",
    default: 1,
    help: "Coordinator processes sharing the load; each enforces 1/N of every concurrency limit, and of every rate limit with RATE_LIMIT_STORE=memory.",
  },
  rateLimitStore: {
    env: "RATE_LIMIT_STORE",
    kind: "string",
    default: undefined,
    help: 'Where rate-limit buckets live. memory: in this process (with COORDINATOR_REPLICAS=N each process enforces 1/N). postgres: shared by every process through PostgreSQL leases, exact under any load balance (README "Rate limits across processes"). Default: postgres when CLUSTER is set, else memory.',
  },
  cluster: {
    env: "CLUSTER",
    kind: "string",
    default: undefined,
    help: "NATS URL (nats://host:4222) of the cluster this coordinator joins: several coordinators share PostgreSQL and NATS, Macs connect to any of them, and any of them routes to every Mac (see Running several coordinators). Unset: one coordinator on its own, no NATS needed.",
  },
  clusterPrefix: {
    env: "CLUSTER_PREFIX",
    kind: "string",
    default: "coord",
    help: "Prefix of the cluster's NATS subjects and KV bucket (letters, digits, _ and -): deployments sharing one NATS use different prefixes.",
  },
  nodeId: {
    env: "NODE_ID",
    kind: "string",
    default: undefined,
    help: "This coordinator's name in the cluster (default: the host name); a random epoch is appended at every start, so a restarted process is a new node.",
  },
  clusterHeartbeatMs: {
    env: "CLUSTER_HEARTBEAT_MS",
    kind: "int",
    default: 1_000,
    help: "How often each coordinator announces itself, and how often an owner beats for each request it runs for another node.",
  },
  clusterNodeTimeoutMs: {
    env: "CLUSTER_NODE_TIMEOUT_MS",
    kind: "int",
    default: 3_000,
    help: "A coordinator silent this long is presumed dead: its Macs are no longer routed to (they reconnect elsewhere) and the requests it forwarded are stopped.",
  },
  clusterSnapshotMs: {
    env: "CLUSTER_SNAPSHOT_MS",
    kind: "int",
    default: 250,
    help: "Shortest interval between two published snapshots of one Mac (its state is published when it changes, at most this often).",
  },
  clusterRefreshMs: {
    env: "CLUSTER_REFRESH_MS",
    kind: "int",
    default: 5_000,
    help: "Every Mac's snapshot is re-published at least this often; a mirror not refreshed for 3x this is dropped.",
  },
  clusterDispatchTimeoutMs: {
    env: "CLUSTER_DISPATCH_TIMEOUT_MS",
    kind: "int",
    default: 2_000,
    help: "How long a Mac's owner has to accept or refuse a forwarded request before the requesting node tries another Mac (the owner refuses it if it arrives later).",
  },
  clusterSilenceMs: {
    env: "CLUSTER_SILENCE_MS",
    kind: "int",
    default: 3_000,
    help: "A forwarded request whose owner sends neither an event nor a keep-alive beat this long ends as a disconnect (failed over if nothing was shown yet).",
  },
  clusterForwardMargin: {
    env: "CLUSTER_FORWARD_MARGIN",
    kind: "number",
    default: 0.5,
    help: "A request is forwarded to another coordinator's Mac only when this node's best own Mac would cost more than (1 + this) times as much (expected completion time; 0.5: the other Mac must cost under two thirds); 0 = whenever it is past the near-tie window. Requests with a cache-affinity key (`user`, `prompt_cache_key`, Anthropic's `metadata.user_id`) keep the plain near-tie rule. See Running several coordinators.",
  },
  warmPoolIntervalMs: {
    env: "WARM_POOL_INTERVAL_MS",
    kind: "int",
    default: 5_000,
    help: "Warm-pool planner tick (0 = off).",
  },
  modelAliasRefreshMs: {
    env: "MODEL_ALIAS_REFRESH_MS",
    kind: "int",
    default: 5_000,
    help: "How often each process re-reads the model aliases from PostgreSQL, so a change made through another replica takes effect here too (0 = only at start and on changes served here).",
  },
  modelPools: {
    env: "MODEL_POOLS",
    kind: "bool",
    default: true,
    help: "Model pools: each provider serves one model pool (an alias, or a build no alias names) at a time, seeded from its first heartbeat; a full pool answers 429 pool_exhausted instead of spilling onto another model's Macs. false is the kill switch: every provider may serve every model it advertises.",
  },
  shutdownGraceMs: {
    env: "SHUTDOWN_GRACE_MS",
    kind: "int",
    default: 20_000,
    help: "On SIGTERM/SIGINT, how long in-flight requests may finish before the servers close (a second signal stops waiting). Closing takes up to ~15 s more: give the orchestrator a kill timeout of at least this + 15 s.",
  },
} as const satisfies Record<string, Setting>;

export type Settings = typeof settings;
export type ValueOf<S extends Setting> = S["kind"] extends "int" | "number"
  ? number
  : S["kind"] extends "bool"
    ? boolean
    : string;
