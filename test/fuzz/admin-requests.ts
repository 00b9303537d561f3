/**
 * Generated Connect JSON requests for every AdminService RPC (proto/coordinator/admin/v1/admin.proto), and the
 * Connect codes each RPC may answer. Ids come mostly from a pool of real accounts, keys and tokens the fuzz
 * created itself (so valid cases reach the database), otherwise from hostile strings; numbers are int64 as
 * JSON strings and numbers, in and out of range; enums by name, by number and misspelt.
 */
import fc from "fast-check";
import { hostileNumber, hostileString } from "./json-mutation.js";
import type { JsonTree } from "./json-tree.js";

/** Real ids the fuzz may name (created by the fuzz, never the ids the rest of the test relies on). */
export interface AdminIdPool {
  accountIds: string[];
  keyIds: string[];
  tokenIds: string[];
  serials: string[];
  models: string[];
  /** Alias names the fuzz may set and delete (never a model the rest of the test routes to). */
  aliases: string[];
}

/** Connect error codes (the JSON `code` of an error body) and the HTTP status Connect sends each with. */
export const connectHttpStatus: Readonly<Record<string, number>> = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
  unauthenticated: 401,
};

/** One RPC: its request generator and the codes it may answer an authorised caller with (besides ok). */
export interface AdminRpc {
  name: string;
  request(pool: AdminIdPool): fc.Arbitrary<JsonTree>;
  /**
   * The caller's-fault codes this RPC may answer. Every RPC may also answer `invalid_argument` (a body that is
   * not its message) and `resource_exhausted` (a body over ADMIN_MAX_BODY_BYTES).
   */
  codes: string[];
}

const from = <T>(xs: readonly T[]) => fc.constantFrom(...xs);

/** An id field: mostly a real one, else junk that must be refused or not found. */
function id(real: readonly string[], prefix: string): fc.Arbitrary<JsonTree> {
  return fc.oneof(
    { weight: 6, arbitrary: real.length > 0 ? from(real) : fc.constant(`${prefix}missing`) },
    {
      weight: 1,
      arbitrary: from([
        "",
        `${prefix}`,
        `${prefix}00000000-0000-0000-0000-000000000000`,
        `${prefix}x`,
        "x".repeat(300),
      ]),
    },
    { weight: 2, arbitrary: hostileString },
  );
}

/** An int64 field as Connect JSON may carry it (a string or a number), often at or past the edges. */
const int64: fc.Arbitrary<JsonTree> = fc.oneof(
  { weight: 4, arbitrary: fc.bigInt({ min: 0n, max: 10n ** 12n }).map(String) },
  { weight: 2, arbitrary: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String) },
  {
    weight: 2,
    arbitrary: from([
      "0",
      "1",
      "-1",
      "9223372036854775807",
      "-9223372036854775808",
      "9223372036854775808",
      "100000000000000000",
      "1e3",
      "-0",
      "0x10",
      " 1",
      "",
    ]),
  },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 1_000_000 }) },
  { weight: 1, arbitrary: hostileNumber },
);

/** A uint32 field: in range mostly, else negative, fractional, past 2^32 or a string. */
const uint32: fc.Arbitrary<JsonTree> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 10_000 }) },
  { weight: 1, arbitrary: from<JsonTree>([0, 1, 4294967295, 4294967296, -1, 1.5, "10", "abc", 1_000_000_000]) },
  { weight: 1, arbitrary: hostileNumber },
);

const text: fc.Arbitrary<JsonTree> = fc.oneof(
  { weight: 3, arbitrary: from(["fuzz", "ops team", "a", "x".repeat(200)]) },
  { weight: 2, arbitrary: hostileString },
);
const tier: fc.Arbitrary<JsonTree> = from<JsonTree>([
  "ACCOUNT_TIER_CONSUMER",
  "ACCOUNT_TIER_SERVICE",
  "ACCOUNT_TIER_UNSPECIFIED",
  0,
  1,
  2,
  3,
  -1,
  "consumer",
  "SERVICE",
  null,
]);

const limits: fc.Arbitrary<JsonTree> = fc.record(
  {
    requestsPerMin: uint32,
    requestsBurst: uint32,
    inputTokensPerMin: uint32,
    inputTokensBurst: uint32,
    outputTokensPerMin: uint32,
    outputTokensBurst: uint32,
    maxConcurrentRequests: uint32,
    spendCapMicroUsd: int64,
  },
  { requiredKeys: [] },
) as fc.Arbitrary<JsonTree>;

/** `{accountId}` or `{keyId}` (the oneof `subject`), sometimes both or neither. */
function subject(pool: AdminIdPool): fc.Arbitrary<Record<string, JsonTree>> {
  return fc.oneof(
    fc.record({ accountId: id(pool.accountIds, "acct_") }),
    fc.record({ keyId: id(pool.keyIds, "key_") }),
    fc.record({ accountId: id(pool.accountIds, "acct_"), keyId: id(pool.keyIds, "key_") }),
    fc.constant({}),
  );
}

const rec = (fields: Record<string, fc.Arbitrary<JsonTree>>, required: string[] = []) =>
  fc.record(fields, { requiredKeys: required }) as fc.Arbitrary<JsonTree>;

/** Every RPC of the service, with what it may answer. */
export const adminRpcs: readonly AdminRpc[] = [
  {
    name: "CreateAccount",
    request: () => rec({ name: text, tier, initialCreditMicroUsd: int64, platformFeeBps: uint32 }, ["name"]),
    codes: ["already_exists"],
  },
  {
    name: "GetAccount",
    request: (p) => rec({ accountId: id(p.accountIds, "acct_") }, ["accountId"]),
    codes: ["not_found"],
  },
  {
    name: "CreditAccount",
    request: (p) =>
      rec({ accountId: id(p.accountIds, "acct_"), amountMicroUsd: int64, reference: fc.oneof(text, fc.uuid()) }, [
        "accountId",
        "amountMicroUsd",
        "reference",
      ]),
    // A reused reference with another amount, or a credit past the money ceilings.
    codes: ["not_found", "already_exists", "failed_precondition", "out_of_range"],
  },
  {
    name: "IssueApiKey",
    request: (p) =>
      rec(
        {
          accountId: id(p.accountIds, "acct_"),
          name: text,
          spendCapMicroUsd: int64,
          value: fc.oneof(
            fc.constantFrom("sk-", "sk-fuzz-fixed", "pk-x", ""),
            fc.uuid().map((u) => `sk-${u}`),
            hostileString,
          ),
        },
        ["accountId"],
      ),
    codes: ["not_found", "already_exists"],
  },
  { name: "RevokeApiKey", request: (p) => rec({ keyId: id(p.keyIds, "key_") }, ["keyId"]), codes: ["not_found"] },
  {
    name: "IssueProviderToken",
    request: (p) => rec({ accountId: id(p.accountIds, "acct_"), name: text }, ["accountId"]),
    codes: ["not_found"],
  },
  {
    name: "RevokeProviderToken",
    request: (p) => rec({ tokenId: id(p.tokenIds, "ptok_") }, ["tokenId"]),
    codes: ["not_found"],
  },
  { name: "ForgetProvider", request: (p) => rec({ serial: id(p.serials, "") }, ["serial"]), codes: ["not_found"] },
  { name: "ListProviders", request: () => fc.constant({}), codes: [] },
  {
    name: "SetModelPrice",
    request: (p) =>
      rec({ model: id(p.models, ""), inputMicroUsdPerMtok: int64, outputMicroUsdPerMtok: int64 }, ["model"]),
    codes: ["not_found"],
  },
  {
    name: "GetUsage",
    request: (p) => rec({ accountId: id(p.accountIds, "acct_"), sinceUnixMs: int64 }, ["accountId"]),
    codes: ["not_found"],
  },
  {
    name: "SetLimits",
    request: (p) => fc.tuple(subject(p), limits).map(([s, l]) => ({ ...s, limits: l })),
    codes: ["not_found"],
  },
  { name: "GetLimits", request: (p) => subject(p) as fc.Arbitrary<JsonTree>, codes: ["not_found"] },
  {
    name: "SetModelAlias",
    request: (p) =>
      rec(
        {
          alias: id(p.aliases, ""),
          build: id(p.models, ""),
          previousBuild: fc.oneof(fc.constant(""), id(p.models, "")),
        },
        ["alias", "build"],
      ),
    // A new alias past MAX_MODEL_ALIASES (junk names that happen to be model ids add up).
    codes: ["resource_exhausted"],
  },
  { name: "ListModelAliases", request: () => fc.constant({}), codes: [] },
  { name: "DeleteModelAlias", request: (p) => rec({ alias: id(p.aliases, "") }, ["alias"]), codes: ["not_found"] },
];
