/**
 * The operator's Connect service (coordinator.admin.v1.AdminService), authorised by ADMIN_KEY as a bearer
 * token. Usable with curl (Connect JSON: POST /coordinator.admin.v1.AdminService/CreateAccount) and with a
 * generated client.
 */
import { timingSafeEqual, createHash } from "node:crypto";
import { Code, ConnectError, type ConnectRouter, type Interceptor, type ServiceImpl } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { AccountTier, AdminService, type AccountSchema } from "../../gen/coordinator/admin/v1/admin_pb.js";
import { CoordinatorError, type ErrorCode } from "../errors/coordinator-error.js";
import { MAX_CREDIT_MICRO_USD, MAX_PRICE_MICRO_USD_PER_MTOK, MAX_SPEND_CAP_MICRO_USD } from "../ledger/money-bounds.js";
import type {
  AccountStore,
  AccountSummary,
  LimitOverride,
  LimitStore,
  LimitSubject,
  StoredLimits,
} from "../accounts/types.js";
import type { ProviderIdentityStore } from "../ledger/provider-identities.js";
import { checkSerial, isValidModelId, ProtocolViolation } from "../protocol/wire-bounds.js";
import { effectiveLimits } from "../ratelimit/limit-override.js";
import type { KeyedRateLimiter } from "../ratelimit/limiter.js";
import type { ProviderRegistry } from "../registry/provider-registry.js";
import type { ModelAlias } from "../models/model-aliases.js";
import { adminTextBounds, checkAmount, checkId, checkName, checkSinceUnixMs, checkText } from "./admin-validation.js";
import { limitOverrideFrom, limitsMessage, limitSubjectFrom } from "./limits-rpc.js";

/**
 * Model aliases as the admin RPCs see them (`SetModelAlias`, `ListModelAliases`, `DeleteModelAlias`). Names
 * arrive checked. `set` and `delete` take effect on this process before they return.
 */
export interface AliasAdmin {
  /** Every alias, sorted by alias, with when it was last set if known. */
  list(): Promise<(ModelAlias & { updatedAtUnixMs?: number })[]>;
  /** Creates or replaces an alias; `capacity_exhausted` when it is new and the maximum exist already. */
  set(a: ModelAlias): Promise<void>;
  /** Removes an alias; false if there was none. */
  delete(alias: string): Promise<boolean>;
}

export interface AdminServiceDeps {
  adminKey: string;
  accounts: AccountStore;
  registry: ProviderRegistry;
  /** Live provider sessions (revocation and forgetting end them at once). */
  providers: { revokeToken(tokenId: string): number; disconnectSerial(serial: string, reason: string): boolean };
  identities: ProviderIdentityStore;
  /** Per-account and per-key limit overrides (`SetLimits` / `GetLimits`). */
  limits: LimitStore;
  /** The tier defaults (for the effective limits), and `SetLimits` applied at once on this process. */
  limiter: Pick<KeyedRateLimiter, "applyOverride" | "tierLimits">;
  /** Makes this process's ledger read a changed spend cap at once (others read it within their metadata TTL). */
  refreshSpendCaps(subject: LimitSubject): void;
  /** Public model names → builds (`SetModelAlias`, `ListModelAliases`, `DeleteModelAlias`). */
  aliases: AliasAdmin;
  /** Clock for `applyOverride`. */
  nowMs(): number;
  /** A provider's recent usage divergence (over-claims in its window, routing penalty). */
  usageDivergence?(providerId: string): { overClaims: number; routingPenalty: number };
  /** The coordinator's routing verdict on a connected provider (scheduler/provider-verdict.ts). */
  verdictOf?(providerId: string): { routable: boolean; reason: string };
  /** Unexpected failures (the caller sees only "internal error"). */
  onInternalError?(e: unknown): void;
}

/** Registers the admin service on a Connect router. */
export function registerAdminService(router: ConnectRouter, deps: AdminServiceDeps): void {
  router.service(AdminService, adminImpl(deps), { interceptors: [requireAdmin(deps.adminKey)] });
}

function requireAdmin(adminKey: string): Interceptor {
  const want = createHash("sha256").update(adminKey).digest();
  return (next) => async (req) => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.header.get("authorization") ?? "");
    const got = createHash("sha256")
      .update(m?.[1] ?? "")
      .digest();
    if (!m || !timingSafeEqual(want, got))
      throw new ConnectError("admin key required (Authorization: Bearer $ADMIN_KEY)", Code.Unauthenticated);
    return next(req);
  };
}

function adminImpl(d: AdminServiceDeps): ServiceImpl<typeof AdminService> {
  const guard = guardWith(d.onInternalError);
  const account = (a: AccountSummary): MessageInitShape<typeof AccountSchema> => ({
    id: a.id,
    name: a.name,
    tier: a.tier === "service" ? AccountTier.SERVICE : AccountTier.CONSUMER,
    balanceMicroUsd: a.balanceMicroUsd,
    reservedMicroUsd: a.reservedMicroUsd,
    platformFeeBps: a.platformFeeBps,
  });
  return {
    createAccount: guard(async (req) => {
      checkText(req.name, "name", { maxChars: adminTextBounds.maxNameChars, required: true });
      checkAmount(req.initialCreditMicroUsd, "initial_credit_micro_usd", 0n, MAX_CREDIT_MICRO_USD);
      checkText(req.requestId, "request_id", { maxChars: adminTextBounds.maxReferenceChars, required: false });
      if (req.platformFeeBps > 10_000)
        throw new ConnectError("platform_fee_bps must be <= 10000", Code.InvalidArgument);
      // Binary callers can send any number: only the listed tiers exist (JSON names are checked by the parser).
      if (!knownTiers.has(req.tier))
        throw new ConnectError(`tier ${req.tier} is not an AccountTier`, Code.InvalidArgument);
      const a = await d.accounts.createAccount({
        name: req.name,
        // UNSPECIFIED means the default tier; an unknown JSON enum name is refused by the parser (strict JSON).
        tier: req.tier === AccountTier.SERVICE ? "service" : "consumer",
        initialCreditMicroUsd: req.initialCreditMicroUsd,
        platformFeeBps: req.platformFeeBps,
        ...(req.requestId !== "" ? { requestId: req.requestId } : {}),
      });
      return { account: account(a) };
    }),
    getAccount: guard(async (req) => {
      checkId(req.accountId, "account_id");
      const a = await d.accounts.getAccount(req.accountId);
      if (!a) throw new ConnectError(`account ${req.accountId} not found`, Code.NotFound);
      return { account: account(a) };
    }),
    creditAccount: guard(async (req) => {
      checkId(req.accountId, "account_id");
      checkAmount(req.amountMicroUsd, "amount_micro_usd", 1n, MAX_CREDIT_MICRO_USD);
      checkText(req.reference, "reference", { maxChars: adminTextBounds.maxReferenceChars, required: true });
      return { account: account(await d.accounts.creditAccount(req.accountId, req.amountMicroUsd, req.reference)) };
    }),
    issueApiKey: guard(async (req) => {
      checkId(req.accountId, "account_id");
      checkName(req.name);
      // 0 = no cap (proto3's default); a negative cap used to pass as "none".
      checkAmount(req.spendCapMicroUsd, "spend_cap_micro_usd", 0n, MAX_SPEND_CAP_MICRO_USD);
      if (req.value && !req.value.startsWith("sk-"))
        throw new ConnectError("value must start with 'sk-'", Code.InvalidArgument);
      const k = await d.accounts.issueApiKey({
        accountId: req.accountId,
        ...(req.name ? { name: req.name } : {}),
        ...(req.spendCapMicroUsd > 0n ? { spendCapMicroUsd: req.spendCapMicroUsd } : {}),
        ...(req.value ? { value: req.value } : {}),
      });
      return { keyId: k.keyId, apiKey: k.apiKey };
    }),
    revokeApiKey: guard(async (req) => {
      checkId(req.keyId, "key_id");
      await d.accounts.revokeApiKey(req.keyId);
      return {};
    }),
    issueProviderToken: guard(async (req) => {
      checkId(req.accountId, "account_id");
      checkName(req.name);
      const t = await d.accounts.issueProviderToken({
        accountId: req.accountId,
        ...(req.name ? { name: req.name } : {}),
      });
      return { tokenId: t.tokenId, token: t.token };
    }),
    revokeProviderToken: guard(async (req) => {
      checkId(req.tokenId, "token_id");
      const revoked = await d.accounts.revokeProviderToken(req.tokenId);
      if (!revoked) throw new ConnectError(`no live provider token ${req.tokenId}`, Code.NotFound);
      return { sessionsEnded: d.providers.revokeToken(req.tokenId) };
    }),
    forgetProvider: guard(async (req) => {
      checkProviderSerial(req.serial);
      if (!(await d.identities.forget(req.serial)))
        throw new ConnectError(`no provider identity for serial ${req.serial}`, Code.NotFound);
      d.providers.disconnectSerial(req.serial, "provider identity forgotten by an operator");
      return {};
    }),
    listProviders: guard(async () => ({
      providers: d.registry.view().providers.map((p) => ({
        ...(d.usageDivergence ? divergenceFields(d.usageDivergence(p.id)) : {}),
        id: p.id,
        serial: p.serial,
        accountId: p.accountId,
        version: p.version,
        chipName: p.hardware.chipName,
        memoryGb: p.hardware.memoryGb,
        models: p.models.map((m) => m.id),
        warmModels: [...p.warmModels],
        inFlight: p.inflight.size,
        state: p.status,
        lastHeartbeatUnixMs: BigInt(p.lastHeartbeatMs),
        pool: p.pool ?? "",
        privateOnly: p.privateOnly === true,
        ...(d.verdictOf ? d.verdictOf(p.id) : {}),
      })),
    })),
    setModelPrice: guard(async (req) => {
      if (!req.model) throw new ConnectError("model is required", Code.InvalidArgument);
      if (!isValidModelId(req.model))
        throw new ConnectError(
          "model must be a model id ([A-Za-z0-9][A-Za-z0-9._:@+/-]*, at most 128 characters)",
          Code.InvalidArgument,
        );
      checkAmount(req.inputMicroUsdPerMtok, "input_micro_usd_per_mtok", 0n, MAX_PRICE_MICRO_USD_PER_MTOK);
      checkAmount(req.outputMicroUsdPerMtok, "output_micro_usd_per_mtok", 0n, MAX_PRICE_MICRO_USD_PER_MTOK);
      await d.accounts.setModelPrice(req.model, req.inputMicroUsdPerMtok, req.outputMicroUsdPerMtok);
      return {};
    }),
    getUsage: guard(async (req) => {
      checkId(req.accountId, "account_id");
      const u = await d.accounts.getUsage(req.accountId, checkSinceUnixMs(req.sinceUnixMs));
      return {
        requests: BigInt(u.requests),
        promptTokens: BigInt(u.promptTokens),
        completionTokens: BigInt(u.completionTokens),
        spentMicroUsd: u.spentMicroUsd,
        earnedMicroUsd: u.earnedMicroUsd,
      };
    }),
    setLimits: guard(async (req) => {
      const subject = limitSubjectFrom(req.subject);
      const stored = await d.limits.set(subject, limitOverrideFrom(req.limits));
      // At once here; other processes follow within the key-cache TTL (rates) and the ledger's metadata TTL (caps).
      d.limiter.applyOverride(subject, subject.kind === "account" ? stored.account : stored.key, d.nowMs());
      d.refreshSpendCaps(subject);
      return limitsResponse(d, subject, stored);
    }),
    getLimits: guard(async (req) => {
      const subject = limitSubjectFrom(req.subject);
      const stored = await d.limits.get(subject);
      if (!stored)
        throw new ConnectError(
          subject.kind === "account" ? `account ${subject.accountId} not found` : `API key ${subject.keyId} not found`,
          Code.NotFound,
        );
      return limitsResponse(d, subject, stored);
    }),
    setModelAlias: guard(async (req) => {
      checkModelName(req.alias, "alias");
      checkModelName(req.build, "build");
      if (req.previousBuild !== "") checkModelName(req.previousBuild, "previous_build");
      if (req.build === req.alias) throw new ConnectError("build must differ from alias", Code.InvalidArgument);
      if (req.previousBuild === req.build)
        throw new ConnectError("previous_build must differ from build", Code.InvalidArgument);
      await d.aliases.set({
        alias: req.alias,
        build: req.build,
        ...(req.previousBuild !== "" ? { previousBuild: req.previousBuild } : {}),
      });
      return {};
    }),
    listModelAliases: guard(async () => ({
      aliases: (await d.aliases.list()).map((a) => ({
        alias: a.alias,
        build: a.build,
        previousBuild: a.previousBuild ?? "",
        updatedAtUnixMs: BigInt(a.updatedAtUnixMs ?? 0),
      })),
    })),
    deleteModelAlias: guard(async (req) => {
      checkModelName(req.alias, "alias");
      if (!(await d.aliases.delete(req.alias))) throw new ConnectError(`no model alias ${req.alias}`, Code.NotFound);
      return {};
    }),
  };
}

/** A required model id field (an alias or a build): `invalid_argument` naming the field otherwise. */
function checkModelName(value: string, field: string): void {
  if (value === "") throw new ConnectError(`${field} is required`, Code.InvalidArgument);
  if (!isValidModelId(value))
    throw new ConnectError(
      `${field} must be a model id ([A-Za-z0-9][A-Za-z0-9._:@+/-]*, at most 128 characters)`,
      Code.InvalidArgument,
    );
}

const knownTiers: ReadonlySet<number> = new Set([AccountTier.UNSPECIFIED, AccountTier.CONSUMER, AccountTier.SERVICE]);

/** The stored limits of a subject and those in effect for it (tier defaults, account and key overrides). */
function limitsResponse(d: AdminServiceDeps, subject: LimitSubject, s: StoredLimits) {
  const own = subject.kind === "account" ? s.account : (s.key ?? {});
  const effective: LimitOverride = effectiveLimits(d.limiter.tierLimits(s.tier), s.account, s.key);
  // Both caps apply to a key's requests: the lower one binds.
  for (const cap of [s.account.spendCapMicroUsd, s.key?.spendCapMicroUsd]) {
    if (cap !== undefined && (effective.spendCapMicroUsd === undefined || cap < effective.spendCapMicroUsd))
      effective.spendCapMicroUsd = cap;
  }
  return { limits: limitsMessage(own), effective: limitsMessage(effective), accountId: s.accountId };
}

function checkProviderSerial(serial: string): void {
  try {
    checkSerial(serial);
  } catch (e) {
    if (e instanceof ProtocolViolation) throw new ConnectError(e.message, Code.InvalidArgument);
    throw e;
  }
}

function divergenceFields(v: { overClaims: number; routingPenalty: number }): {
  usageOverClaims: number;
  routingPenalty: number;
} {
  return { usageOverClaims: v.overClaims, routingPenalty: v.routingPenalty };
}

/**
 * The one table from the coordinator's error codes to Connect codes, complete: a new ErrorCode does not compile
 * until it is mapped here.
 */
export const connectCodes: Readonly<Record<ErrorCode, Code>> = {
  invalid_request: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  not_found: Code.NotFound,
  model_not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  payload_too_large: Code.ResourceExhausted,
  insufficient_quota: Code.FailedPrecondition,
  rate_limited: Code.ResourceExhausted,
  capacity_exhausted: Code.ResourceExhausted,
  model_unavailable: Code.Unavailable,
  provider_failed: Code.Unavailable,
  timeout: Code.DeadlineExceeded,
  canceled: Code.Canceled,
  unavailable: Code.Unavailable,
  internal: Code.Internal,
};

/** What a PostgreSQL unique violation (23505) on a constraint means to an operator. */
const duplicateMessages: Readonly<Record<string, string>> = {
  api_keys_key_hash_key: "an API key with this value already exists",
  ledger_entries_reference: "this credit reference was already used",
};

/** A wrapper mapping CoordinatorErrors (and anything else) thrown by the store to Connect errors. */
function guardWith(onInternalError: ((e: unknown) => void) | undefined) {
  return <A extends unknown[], R>(fn: (...args: A) => Promise<R>): ((...args: A) => Promise<R>) =>
    async (...args) => {
      try {
        return await fn(...args);
      } catch (e) {
        if (e instanceof ConnectError) throw e;
        if (e instanceof CoordinatorError) {
          if (e.code === "internal") onInternalError?.(e);
          throw new ConnectError(e.code === "internal" ? "internal error" : e.message, connectCodes[e.code]);
        }
        const pg = e as { code?: unknown; constraint?: unknown };
        // A row that refers to a missing account (PostgreSQL foreign_key_violation): say so, not the SQL.
        if (pg?.code === "23503") throw new ConnectError("the account does not exist", Code.NotFound);
        // A duplicate of something unique (unique_violation), e.g. an API key value issued twice.
        if (pg?.code === "23505") {
          throw new ConnectError(
            (typeof pg.constraint === "string" && duplicateMessages[pg.constraint]) ||
              "a record with this value already exists",
            Code.AlreadyExists,
          );
        }
        // Anything else is ours: the caller gets no internals, the operator gets the cause.
        onInternalError?.(e);
        throw new ConnectError("internal error", Code.Internal, undefined, undefined, e);
      }
    };
}
