import assert from "node:assert/strict";
import { Code } from "@connectrpc/connect";
import { connectCodes } from "../../../src/admin/admin-service.js";
import { errorTable, type ErrorCode } from "../../../src/errors/coordinator-error.js";

describe("admin service error table", () => {
  it("maps every CoordinatorError code to a Connect code, only `internal` to Internal", () => {
    const codes = Object.keys(errorTable) as ErrorCode[];
    assert.deepEqual(Object.keys(connectCodes).sort(), [...codes].sort());
    for (const c of codes) {
      if (c === "internal") assert.equal(connectCodes[c], Code.Internal);
      else assert.notEqual(connectCodes[c], Code.Internal, c);
    }
  });

  it("maps each code to the Connect code of the same meaning", () => {
    assert.deepEqual(connectCodes, {
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
    });
  });
});
