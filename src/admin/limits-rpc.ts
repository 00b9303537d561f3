/**
 * `SetLimits` / `GetLimits` at the admin edge: the `Limits` message ⇄ the ledger's `LimitOverride`, validated
 * against the bounds in `src/ratelimit/limit-override.ts` and `src/ledger/money-bounds.ts`.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Limits, LimitsSchema, SetLimitsRequest } from "../../gen/coordinator/admin/v1/admin_pb.js";
import { CoordinatorError } from "../errors/coordinator-error.js";
import { MAX_SPEND_CAP_MICRO_USD } from "../ledger/money-bounds.js";
import type { LimitOverride, LimitSubject, RateLimitOverride } from "../accounts/types.js";
import { rateLimitOverrideFields, rateLimitOverrideProblem } from "../ratelimit/limit-override.js";
import { checkAmount, checkId } from "./admin-validation.js";

/** The subject of a `SetLimits`/`GetLimits` (exactly one of `account_id`, `key_id`). */
export function limitSubjectFrom(subject: SetLimitsRequest["subject"]): LimitSubject {
  switch (subject.case) {
    case "accountId":
      return { kind: "account", accountId: checkId(subject.value, "account_id") };
    case "keyId":
      return { kind: "key", keyId: checkId(subject.value, "key_id") };
    default:
      throw new CoordinatorError("invalid_request", "one of account_id or key_id is required", { param: "subject" });
  }
}

/** The override a `Limits` message asks for (absent message = none), or `invalid_request` naming the field. */
export function limitOverrideFrom(l: Limits | undefined): LimitOverride {
  const out: LimitOverride = {};
  if (!l) return out;
  for (const f of rateLimitOverrideFields) {
    const v = l[f];
    if (v !== undefined) out[f] = v;
  }
  const problem = rateLimitOverrideProblem(out);
  if (problem) {
    const field = `limits.${snake(problem.field)}`;
    throw new CoordinatorError("invalid_request", `${field} ${problem.message}`, { param: field });
  }
  if (l.spendCapMicroUsd !== undefined) {
    out.spendCapMicroUsd = checkAmount(l.spendCapMicroUsd, "limits.spend_cap_micro_usd", 0n, MAX_SPEND_CAP_MICRO_USD);
  }
  return out;
}

/** A `Limits` message from an override (only the fields that are set). */
export function limitsMessage(o: LimitOverride | RateLimitOverride): MessageInitShape<typeof LimitsSchema> {
  const out: MessageInitShape<typeof LimitsSchema> = {};
  for (const f of rateLimitOverrideFields) {
    const v = o[f];
    if (v !== undefined) out[f] = v;
  }
  if ("spendCapMicroUsd" in o && o.spendCapMicroUsd !== undefined) out.spendCapMicroUsd = o.spendCapMicroUsd;
  return out;
}

function snake(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
