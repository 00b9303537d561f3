/**
 * Fuzz of every AdminService RPC over Connect against a real `coordinator serve` (issue 13, item 8): generated
 * Connect JSON per RPC, mutated in the tree and on the wire; binary (application/proto) encodings with bit
 * flips and truncation; wrong content types; wrong admin keys. An authorised caller gets 200 or one of the RPC's
 * caller's-fault codes (admin-requests.ts), never internal/unknown/unavailable; afterwards the coordinator
 * still answers /health, its resident set grew by less than a bound, and `ledger verify` is clean.
 */
import assert from "node:assert/strict";
import { fromJson, toBinary, type DescMessage } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import { AdminService } from "../../gen/coordinator/admin/v1/admin_pb.js";
import { adminCall } from "../support/coordinator-process.js";
import { adminRpcs, connectHttpStatus, type AdminIdPool, type AdminRpc } from "./admin-requests.js";
import { expect } from "./consumer-answers.js";
import { allOf, batchOf, fuzzParameters, report, runsFor } from "./fuzz-options.js";
import {
  checkRssGrowth,
  loggedErrors,
  startFuzzTarget,
  stopAndVerifyLedger,
  type FuzzResponse,
  type FuzzTarget,
} from "./fuzz-target.js";
import { bodyCase, byteOp, preview } from "./json-mutation.js";
import { applyByteOps, renderBody, writeJson, type BodyCase, type ByteOp, type JsonTree } from "./json-tree.js";

/** ADMIN_MAX_BODY_BYTES's default: a larger body is `resource_exhausted`. */
const ADMIN_MAX_BODY_BYTES = 64 * 1024;
const CASES_PER_RPC = 800;

type AdminAuth = "ok" | "missing" | "wrong" | "basic";
const adminAuth: fc.Arbitrary<AdminAuth> = fc.oneof(
  { weight: 30, arbitrary: fc.constant<AdminAuth>("ok") },
  { weight: 1, arbitrary: fc.constantFrom<AdminAuth>("missing", "wrong", "basic") },
);

/**
 * A body: Connect JSON (mutated), a Connect binary encoding of a generated request (flipped, cut), a gRPC-web
 * message (the adapter serves that protocol too; envelope and payload mutated together), or a body under a
 * content type no protocol takes.
 */
type AdminBody =
  | { codec: "json"; contentType: string; body: BodyCase }
  | { codec: "proto"; json: JsonTree; byteOps: ByteOp[] }
  | { codec: "grpc-web"; binary: boolean; json: JsonTree; byteOps: ByteOp[] }
  | { codec: "other"; contentType: string | undefined; body: BodyCase };

function adminBody(rpc: AdminRpc, pool: AdminIdPool): fc.Arbitrary<AdminBody> {
  const request = rpc.request(pool);
  return fc.oneof(
    {
      weight: 14,
      arbitrary: fc.record({
        codec: fc.constant("json" as const),
        contentType: fc.constantFrom("application/json", "application/json", "application/json; charset=utf-8"),
        body: bodyCase(request),
      }),
    },
    {
      weight: 4,
      arbitrary: fc.record({
        codec: fc.constant("proto" as const),
        json: request,
        byteOps: fc.array(byteOp, { maxLength: 3 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        codec: fc.constant("grpc-web" as const),
        binary: fc.boolean(),
        json: request,
        byteOps: fc.array(byteOp, { maxLength: 2 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        codec: fc.constant("other" as const),
        contentType: fc.constantFrom(
          undefined,
          "",
          "text/plain",
          "application/x-www-form-urlencoded",
          "application/json; charset=utf-16",
          "application/xml",
          "application/protobuf",
        ),
        body: bodyCase(request),
      }),
    },
  );
}

/** The bytes of a body (a binary request its schema cannot hold is sent as its JSON text: junk to the codec). */
function renderAdminBody(schema: DescMessage, b: AdminBody): Buffer {
  if (b.codec === "json" || b.codec === "other") return renderBody(b.body);
  const binary = b.codec === "proto" || b.binary;
  let payload = Buffer.from(writeJson(b.json));
  if (binary) {
    try {
      payload = Buffer.from(toBinary(schema, fromJson(schema, JSON.parse(writeJson(b.json)))));
    } catch {
      // keep the JSON text
    }
  }
  if (b.codec === "proto") return applyByteOps(payload, b.byteOps);
  // gRPC-web: one length-prefixed message (flags byte 0, 4-byte big-endian length).
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return applyByteOps(Buffer.concat([head, payload]), b.byteOps);
}

function contentTypeOf(b: AdminBody): string | undefined {
  if (b.codec === "proto") return "application/proto";
  if (b.codec === "grpc-web") return b.binary ? "application/grpc-web+proto" : "application/grpc-web+json";
  return b.contentType;
}

/** The status of a gRPC-web answer (headers, or the trailer frame of the body) as a Connect code name. */
function grpcWebCode(res: FuzzResponse): string {
  let status = res.headers["grpc-status"];
  if (status === undefined) {
    const m = /grpc-status:\s*(\d+)/i.exec(res.body);
    status = m?.[1];
  }
  if (status === undefined)
    throw new Error(`a gRPC-web answer without grpc-status: HTTP ${res.status} ${res.body.slice(0, 200)}`);
  const n = Number(status);
  // Code's names (InvalidArgument) in Connect's spelling (invalid_argument); 0 is ok.
  return n === 0
    ? "ok"
    : String(Code[n])
        .replace(/(?<=[a-z])(?=[A-Z])/g, "_")
        .toLowerCase();
}

describe("fuzz: admin RPCs", function () {
  this.timeout(180_000);
  let t: FuzzTarget;
  let pool: AdminIdPool;
  let rssAfterWarmUp = 0;

  before(async function () {
    if (process.platform !== "linux") this.skip();
    t = await startFuzzTarget({ macs: 1 });
    // The fuzz's own accounts, keys and tokens: it may revoke, credit or cap them at will.
    pool = {
      accountIds: [],
      keyIds: [],
      tokenIds: [],
      serials: [t.macs[0]!.serial, "NEVER-SEEN-1"],
      models: ["gpt-oss-20b", "qwen3-8b", "fuzz-model"],
      aliases: ["fuzz-alias", "fuzz-alias-2", "fuzz-alias-3"],
    };
    for (let i = 0; i < 3; i++) {
      const a = await adminCall<{ account: { id: string } }>(t.baseUrl, t.adminKey, "CreateAccount", {
        name: `fuzz-admin-${i}`,
        initialCreditMicroUsd: "1000000",
      });
      pool.accountIds.push(a.account.id);
      pool.keyIds.push(
        (await adminCall<{ keyId: string }>(t.baseUrl, t.adminKey, "IssueApiKey", { accountId: a.account.id })).keyId,
      );
      pool.tokenIds.push(
        (await adminCall<{ tokenId: string }>(t.baseUrl, t.adminKey, "IssueProviderToken", { accountId: a.account.id }))
          .tokenId,
      );
    }
    for (let i = 0; i < 8; i++)
      for (const rpc of adminRpcs)
        await t.send(
          adminRequest(
            rpc.name,
            "ok",
            "application/json",
            Buffer.from(JSON.stringify(fc.sample(rpc.request(pool), { numRuns: 1, seed: i })[0])),
          ),
        );
    rssAfterWarmUp = t.rssBytes();
  });
  after(async () => {
    await t?.close();
  });

  const adminRequest = (rpc: string, auth: AdminAuth, contentType: string | undefined, body: Buffer) => {
    const headers: Record<string, string> = {};
    if (contentType !== undefined) headers["content-type"] = contentType;
    if (auth === "ok") headers.authorization = `Bearer ${t.adminKey}`;
    if (auth === "wrong") headers.authorization = "Bearer admin-wrong";
    if (auth === "basic") headers.authorization = `Basic ${Buffer.from(`admin:${t.adminKey}`).toString("base64")}`;
    return { method: "POST", path: `/${AdminService.typeName}/${rpc}`, headers, body };
  };

  for (const rpc of adminRpcs) {
    it(`answers ~${CASES_PER_RPC} generated and mutated ${rpc.name} requests with 200 or one of its caller's-fault codes`, async () => {
      const started = performance.now();
      const cpu = t.cpuSeconds();
      const schema = Object.values(AdminService.method).find((m) => m.name === rpc.name)!.input;
      const codes = new Map<string, number>();
      let total = 0;
      await fc.assert(
        fc.asyncProperty(batchOf(fc.record({ body: adminBody(rpc, pool), auth: adminAuth })), (batch) =>
          allOf(batch, async (c) => {
            const body = renderAdminBody(schema, c.body);
            const contentType = contentTypeOf(c.body);
            const res = await t.send(adminRequest(rpc.name, c.auth, contentType, body));
            try {
              const code = checkAdminAnswer(rpc, { auth: c.auth, codec: c.body.codec, bodyBytes: body.length }, res);
              codes.set(code, (codes.get(code) ?? 0) + 1);
              total++;
            } catch (e) {
              throw new Error(
                `${(e as Error).message}\n  for ${rpc.name} (${c.auth}, ${contentType}) body ${preview(body)}`,
              );
            }
          }),
        ),
        fuzzParameters(runsFor(CASES_PER_RPC)),
      );
      await t.assertAlive();
      const summary = [...codes]
        .sort()
        .map(([k, n]) => `${k}×${n}`)
        .join(" ");
      report(rpc.name, total, started, `${summary}; coordinator CPU ${(t.cpuSeconds() - cpu).toFixed(1)} s`);
    });
  }

  it("answers ~600 requests to unknown procedures, other methods and near-miss service paths with 401, 404 or 405 only", async () => {
    const started = performance.now();
    let total = 0;
    const procedure = fc.oneof(
      fc.constantFrom(...adminRpcs.map((r) => r.name), "createAccount", "Nope", "", "CreateAccount/x", "%00", "..%2F"),
      fc.stringMatching(/^[A-Za-z0-9._~-]{0,20}$/),
    );
    const service = fc.constantFrom(
      AdminService.typeName,
      `${AdminService.typeName}X`,
      "coordinator.admin.v1",
      "coordinator.admin.v2.AdminService",
      "grpc.health.v1.Health",
    );
    const req = fc.record({
      method: fc.constantFrom("POST", "POST", "GET", "PUT", "DELETE", "OPTIONS"),
      service,
      procedure,
      auth: adminAuth,
      body: fc.option(fc.uint8Array({ maxLength: 32 }), { freq: 3 }),
    });
    await fc.assert(
      fc.asyncProperty(batchOf(req), (batch) =>
        allOf(batch, async (c) => {
          const r = adminRequest(c.procedure, c.auth, "application/json", Buffer.from(c.body ?? []));
          const path = `/${c.service}/${c.procedure}`;
          const res = await t.send({ ...r, method: c.method, path });
          const known = c.service === AdminService.typeName && adminRpcs.some((x) => x.name === c.procedure);
          const guarded = path.startsWith(`/${AdminService.typeName}/`);
          let allowed: number[];
          if (!guarded) allowed = [404, 405];
          else if (c.method !== "POST") allowed = [405];
          else if (c.auth !== "ok") allowed = [401];
          else allowed = known ? [200, 400, 404, 409] : [404];
          expect(allowed.includes(res.status), `${c.method} ${path} (${c.auth}): one of ${allowed.join(", ")}`, res);
          total++;
        }),
      ),
      fuzzParameters(runsFor(600)),
    );
    await t.assertAlive();
    report("unknown procedures", total, started);
  });

  it("is still alive afterwards, with its resident set bounded, no internal error logged and the ledger verified clean", async function () {
    if (!t) this.skip();
    await t.assertAlive();
    checkRssGrowth(t, rssAfterWarmUp);
    assert.deepEqual(loggedErrors(t), [], "the coordinator logged no internal error");
    // Credits at the money ceilings, caps and revocations later, the books still balance.
    await stopAndVerifyLedger(t);
  });
});

/**
 * Checks one admin answer; returns its Connect code ("ok" for 200). Bad credentials: `unauthenticated` only. A
 * body that is neither Connect JSON nor binary: 415. Otherwise 200, or a Connect error whose code is
 * `invalid_argument`, `resource_exhausted` (only for a body over ADMIN_MAX_BODY_BYTES) or one of the RPC's own
 * codes, sent with Connect's HTTP status for that code.
 */
function checkAdminAnswer(
  rpc: AdminRpc,
  c: { auth: AdminAuth; codec: AdminBody["codec"]; bodyBytes: number },
  res: FuzzResponse,
): string {
  if (c.codec === "grpc-web") {
    // gRPC-web answers errors as HTTP 200 with a grpc-status; the codes allowed are the same.
    expect(res.status === 200, "a gRPC-web answer is HTTP 200", res);
    const code = grpcWebCode(res);
    if (c.auth !== "ok") expect(code === "unauthenticated", "bad credentials are refused with unauthenticated", res);
    else {
      // A mutated envelope may declare any message size (resource_exhausted past readMaxBytes) or hold no
      // complete message (the adapter's "missing input message", unimplemented): framing errors, the caller's.
      const allowed = ["ok", "invalid_argument", "resource_exhausted", "unimplemented", ...rpc.codes];
      expect(allowed.includes(code), `${rpc.name} over gRPC-web: one of ${allowed.join(", ")}, got ${code}`, res);
    }
    return `grpc-web:${code}`;
  }
  if (res.status === 415) {
    expect(c.codec === "other", "415 only for a content type that is neither Connect JSON nor binary", res);
    return "415";
  }
  if (res.status === 200) {
    expect(c.auth === "ok", "bad credentials are refused", res);
    return "ok";
  }
  let code: string;
  try {
    code = String((JSON.parse(res.body) as { code?: unknown }).code);
  } catch {
    throw new Error(`HTTP ${res.status} is not a Connect error body: ${res.body.slice(0, 300)}`);
  }
  expect(connectHttpStatus[code] === res.status, `HTTP status ${res.status} is Connect's for code ${code}`, res);
  if (c.auth !== "ok") {
    expect(code === "unauthenticated", "bad credentials are refused with unauthenticated", res);
    return code;
  }
  const allowed = [
    "invalid_argument",
    ...rpc.codes,
    ...(c.bodyBytes > ADMIN_MAX_BODY_BYTES ? ["resource_exhausted"] : []),
  ];
  // A wrong content type is refused before the body is read (415), or by the codec that cannot read it.
  if (c.codec === "other") allowed.push("unimplemented");
  expect(allowed.includes(code), `${rpc.name}: ok or one of ${allowed.join(", ")}`, res);
  return code;
}
