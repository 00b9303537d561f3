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
import type { AccountStore, AccountSummary } from "../ledger/types.js";
import type { ProviderIdentityStore } from "../ledger/provider-identities.js";
import type { ProviderRegistry } from "../registry/provider-registry.js";

export interface AdminServiceDeps {
  adminKey: string;
  accounts: AccountStore;
  registry: ProviderRegistry;
  /** Live provider sessions (revocation and forgetting end them at once). */
  providers: { revokeToken(tokenId: string): number; disconnectSerial(serial: string, reason: string): boolean };
  identities: ProviderIdentityStore;
  /** A provider's recent usage divergence (over-claims in its window, routing penalty). */
  usageDivergence?(providerId: string): { overClaims: number; routingPenalty: number };
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
    const got = createHash("sha256").update(m?.[1] ?? "").digest();
    if (!m || !timingSafeEqual(want, got)) throw new ConnectError("admin key required (Authorization: Bearer $ADMIN_KEY)", Code.Unauthenticated);
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
      if (!req.name) throw new ConnectError("name is required", Code.InvalidArgument);
      if (req.initialCreditMicroUsd < 0n) throw new ConnectError("initial_credit_micro_usd must be >= 0", Code.InvalidArgument);
      if (req.platformFeeBps > 10_000) throw new ConnectError("platform_fee_bps must be <= 10000", Code.InvalidArgument);
      const a = await d.accounts.createAccount({
        name: req.name,
        // UNSPECIFIED means the default tier; an unknown JSON enum name is refused by the parser (strict JSON).
        tier: req.tier === AccountTier.SERVICE ? "service" : "consumer",
        initialCreditMicroUsd: req.initialCreditMicroUsd,
        platformFeeBps: req.platformFeeBps,
      });
      return { account: account(a) };
    }),
    getAccount: guard(async (req) => {
      requireAccountId(req.accountId);
      const a = await d.accounts.getAccount(req.accountId);
      if (!a) throw new ConnectError(`account ${req.accountId} not found`, Code.NotFound);
      return { account: account(a) };
    }),
    creditAccount: guard(async (req) => {
      requireAccountId(req.accountId);
      if (req.amountMicroUsd <= 0n) throw new ConnectError("amount_micro_usd must be > 0", Code.InvalidArgument);
      if (!req.reference) throw new ConnectError("reference (an idempotency key) is required", Code.InvalidArgument);
      return { account: account(await d.accounts.creditAccount(req.accountId, req.amountMicroUsd, req.reference)) };
    }),
    issueApiKey: guard(async (req) => {
      requireAccountId(req.accountId);
      if (req.value && !req.value.startsWith("sk-")) throw new ConnectError("value must start with 'sk-'", Code.InvalidArgument);
      const k = await d.accounts.issueApiKey({
        accountId: req.accountId,
        ...(req.name ? { name: req.name } : {}),
        ...(req.spendCapMicroUsd > 0n ? { spendCapMicroUsd: req.spendCapMicroUsd } : {}),
        ...(req.value ? { value: req.value } : {}),
      });
      return { keyId: k.keyId, apiKey: k.apiKey };
    }),
    revokeApiKey: guard(async (req) => {
      if (!req.keyId) throw new ConnectError("key_id is required", Code.InvalidArgument);
      await d.accounts.revokeApiKey(req.keyId);
      return {};
    }),
    issueProviderToken: guard(async (req) => {
      requireAccountId(req.accountId);
      const t = await d.accounts.issueProviderToken({ accountId: req.accountId, ...(req.name ? { name: req.name } : {}) });
      return { tokenId: t.tokenId, token: t.token };
    }),
    revokeProviderToken: guard(async (req) => {
      if (!req.tokenId) throw new ConnectError("token_id is required", Code.InvalidArgument);
      const revoked = await d.accounts.revokeProviderToken(req.tokenId);
      if (!revoked) throw new ConnectError(`no live provider token ${req.tokenId}`, Code.NotFound);
      return { sessionsEnded: d.providers.revokeToken(req.tokenId) };
    }),
    forgetProvider: guard(async (req) => {
      if (!req.serial) throw new ConnectError("serial is required", Code.InvalidArgument);
      if (!(await d.identities.forget(req.serial))) throw new ConnectError(`no provider identity for serial ${req.serial}`, Code.NotFound);
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
      })),
    })),
    setModelPrice: guard(async (req) => {
      if (!req.model) throw new ConnectError("model is required", Code.InvalidArgument);
      if (req.inputMicroUsdPerMtok < 0n || req.outputMicroUsdPerMtok < 0n) throw new ConnectError("prices must be >= 0", Code.InvalidArgument);
      await d.accounts.setModelPrice(req.model, req.inputMicroUsdPerMtok, req.outputMicroUsdPerMtok);
      return {};
    }),
    getUsage: guard(async (req) => {
      requireAccountId(req.accountId);
      const u = await d.accounts.getUsage(req.accountId, req.sinceUnixMs > 0n ? Number(req.sinceUnixMs) : undefined);
      return {
        requests: BigInt(u.requests),
        promptTokens: BigInt(u.promptTokens),
        completionTokens: BigInt(u.completionTokens),
        spentMicroUsd: u.spentMicroUsd,
        earnedMicroUsd: u.earnedMicroUsd,
      };
    }),
  };
}

function divergenceFields(v: { overClaims: number; routingPenalty: number }): { usageOverClaims: number; routingPenalty: number } {
  return { usageOverClaims: v.overClaims, routingPenalty: v.routingPenalty };
}

function requireAccountId(id: string): void {
  if (!id) throw new ConnectError("account_id is required", Code.InvalidArgument);
}

const connectCodes: Partial<Record<ErrorCode, Code>> = {
  invalid_request: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  not_found: Code.NotFound,
  model_not_found: Code.NotFound,
  insufficient_quota: Code.FailedPrecondition,
  unavailable: Code.Unavailable,
};

/** A wrapper mapping CoordinatorErrors (and anything else) thrown by the store to Connect errors. */
function guardWith(onInternalError: ((e: unknown) => void) | undefined) {
  return <A extends unknown[], R>(fn: (...args: A) => Promise<R>): ((...args: A) => Promise<R>) => async (...args) => {
    try {
      return await fn(...args);
    } catch (e) {
      if (e instanceof ConnectError) throw e;
      if (e instanceof CoordinatorError) throw new ConnectError(e.message, connectCodes[e.code] ?? Code.Internal);
      // A row that refers to a missing account (PostgreSQL foreign_key_violation): say so, not the SQL.
      if ((e as { code?: string })?.code === "23503") throw new ConnectError("the account does not exist", Code.NotFound);
      // Anything else is ours: the caller gets no internals, the operator gets the cause.
      onInternalError?.(e);
      throw new ConnectError("internal error", Code.Internal, undefined, undefined, e);
    }
  };
}
