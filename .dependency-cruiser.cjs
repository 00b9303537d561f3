/**
 * The architecture's import rules (README "Architecture"), checked by `npm run lint` and CI. A rule names a
 * layer and what it must not reach; the comment says why.
 * @type {import('dependency-cruiser').IConfiguration}
 */
const IO_MODULES = [
  "^node:",
  "^(fs|net|http|http2|https|tls|dgram|child_process|worker_threads|cluster|os)$",
  "^pg$",
  "^kysely",
  "^@grpc/",
  "^@connectrpc/",
  "^hot-shots$",
  "^pino$",
  "^@opentelemetry/sdk",
];

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment:
        "An import cycle means two modules are one concept split badly; module initialisation order becomes fragile.",
      from: {},
      to: { circular: true },
    },
    {
      name: "pure-core-no-io",
      severity: "error",
      comment:
        "The scheduler, registry, health gates, model directory, identity types, errors and the token bucket are pure: " +
        "a snapshot in, a decision out. No sockets, files, database drivers, telemetry SDKs or generated wire types.",
      from: {
        path: "^src/(scheduler|registry|health|models|accounts|errors|inference)/|^src/ratelimit/token-bucket\\.ts$",
      },
      to: { path: [...IO_MODULES, "^gen/"] },
    },
    {
      name: "provider-wire-only-in-protocol",
      severity: "error",
      comment:
        "Only the provider edge (src/protocol) speaks the generated provider protocol; everyone else works with the " +
        "domain types frames.ts maps it to. The simulated fleet is a provider, so it speaks it too.",
      from: { path: "^src/", pathNot: "^src/(protocol|tools/fleet)/" },
      to: { path: "^gen/coordinator/provider/" },
    },
    {
      name: "admin-wire-only-in-admin",
      severity: "error",
      comment: "Only the admin edge (src/admin) speaks the generated admin API.",
      from: { path: "^src/", pathNot: "^src/admin/" },
      to: { path: "^gen/coordinator/admin/" },
    },
    {
      name: "ledger-knows-no-transport",
      severity: "error",
      comment: "The ledger is money on PostgreSQL: it never sees HTTP, gRPC, Connect or the request pipeline.",
      from: { path: "^src/ledger/" },
      to: {
        path: [
          "^src/(http|protocol|dispatch|admin|dialects|cli)/",
          "^@grpc/",
          "^@connectrpc/",
          "^(node:)?(http|http2|https)$",
        ],
      },
    },
    {
      name: "product-not-on-tools",
      severity: "error",
      comment:
        "The tools (fleet, simulate, loadtest, bench) use the product, never the reverse: the product ships without " +
        "them. Only the CLI, which launches them, may import them.",
      from: { path: "^src/", pathNot: "^src/(tools|cli)/" },
      to: { path: "^(src/tools/|bench/)" },
    },
    {
      name: "nothing-imports-the-cli",
      severity: "error",
      comment: "The CLI is the top: entry points and composition. Nothing below it may depend on it.",
      from: { path: "^src/", pathNot: "^src/cli/" },
      to: { path: "^src/cli/" },
    },
    {
      name: "not-to-test",
      severity: "error",
      comment: "Shipped code never imports test code (the benchmarks, a dev tool, may borrow its scratch database).",
      from: { path: "^(src|bin)/" },
      to: { path: "^test/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default"],
      extensions: [".ts", ".js", ".cjs", ".mjs"],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
