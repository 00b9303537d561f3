/**
 * Probes an orchestrator or a mesh uses: /livez and /readyz on the HTTP port, `grpc.health.v1.Health` and server
 * reflection on the provider port. Readiness (HTTP and gRPC alike) leaves while the replica drains; liveness stays.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { promisify } from "node:util";
import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { service as healthService } from "grpc-health-check";
import { migrateToLatest, openDatabase, pendingMigrations } from "../../src/ledger/database.js";
import { migrations } from "../../src/ledger/migrations/index.js";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { eventually } from "../support/http.js";
import { createTestDatabase } from "../support/postgres.js";
import { jsonOf, rawRequest } from "../support/raw-http.js";

type ServingStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

const HealthClient = grpc.makeClientConstructor(healthService as grpc.ServiceDefinition, "grpc.health.v1.Health");

function check(client: grpc.Client, service: string): Promise<{ status: ServingStatus } | grpc.ServiceError> {
  return new Promise((resolve) =>
    (
      client as unknown as {
        Check: (req: unknown, cb: (e: grpc.ServiceError | null, r: { status: ServingStatus }) => void) => void;
      }
    ).Check({ service }, (e, r) => resolve(e ?? r)),
  );
}

/** The official reflection proto shipped with @grpc/reflection, loaded as a plain grpc-js client. */
function reflectionClient(
  address: string,
): grpc.Client & { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, ReflectionResponse> } {
  const protoFile = path.join(
    path.dirname(createRequire(import.meta.url).resolve("@grpc/reflection")),
    "../proto/grpc/reflection/v1/reflection.proto",
  );
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoFile, { keepCase: true })) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
  };
  return new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure()) as never;
}

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

function reflect(address: string, request: Record<string, string>): Promise<ReflectionResponse> {
  const client = reflectionClient(address);
  return new Promise<ReflectionResponse>((resolve, reject) => {
    const call = client.ServerReflectionInfo();
    call.on("data", (r: ReflectionResponse) => {
      resolve(r);
      call.end();
    });
    call.on("error", reject);
    call.write(request);
  }).finally(() => client.close());
}

describe("health probes and gRPC introspection", function () {
  this.timeout(30_000);
  let t: TestCoordinator;
  let health: grpc.Client | undefined;
  afterEach(async () => {
    health?.close();
    health = undefined;
    await t?.close();
  });

  it("turns /readyz and gRPC health to 503 / NOT_SERVING while draining, and keeps /livez at 200", async () => {
    t = await startTestCoordinator({ macs: [] });
    const address = `127.0.0.1:${t.coordinator.grpcPort}`;
    health = new HealthClient(address, grpc.credentials.createInsecure());

    // A fresh connection per probe, as the kubelet opens (a draining server closes idle keep-alive sockets).
    const probe = (path: string) => rawRequest(t.coordinator.httpPort, { method: "GET", path });
    const live = await probe("/livez");
    assert.equal(live.status, 200);
    const ready = await probe("/readyz");
    assert.equal(ready.status, 200);
    assert.deepEqual(jsonOf(ready), { status: "ready", checks: { migrations: "ok", ledger: "ok", serving: "ok" } });
    assert.deepEqual(await check(health, ""), { status: "SERVING" });
    assert.deepEqual(await check(health, "coordinator.provider.v1.ProviderService"), { status: "SERVING" });
    const unknown = await check(health, "no.such.Service");
    assert.equal(
      (unknown as grpc.ServiceError).code,
      grpc.status.NOT_FOUND,
      "the health protocol's answer for an unknown name",
    );

    // A Watch stream (how Envoy and some meshes follow health) hears the flip without polling.
    const seen: ServingStatus[] = [];
    const watch = (
      health as unknown as { Watch: (req: unknown) => grpc.ClientReadableStream<{ status: ServingStatus }> }
    ).Watch({ service: "" });
    watch.on("data", (r) => seen.push(r.status));
    watch.on("error", () => {});
    await eventually(() => seen.length === 1, 5_000, "the watch's first status");

    const drained = await t.coordinator.drain(5_000);
    assert.equal(drained.drained, true);

    const notReady = await probe("/readyz");
    assert.equal(notReady.status, 503);
    assert.deepEqual(jsonOf(notReady), {
      status: "not_ready",
      checks: { migrations: "ok", ledger: "ok", serving: "draining" },
    });
    assert.equal(
      (await probe("/livez")).status,
      200,
      "a draining process is alive: restarting it would cut its streams",
    );
    assert.deepEqual(await check(health, ""), { status: "NOT_SERVING" });
    assert.deepEqual(await check(health, "coordinator.provider.v1.ProviderService"), { status: "NOT_SERVING" });
    await eventually(() => seen.at(-1) === "NOT_SERVING", 5_000, "the watch to hear NOT_SERVING");
    assert.deepEqual(seen, ["SERVING", "NOT_SERVING"]);
    watch.cancel();
  });

  it("lists ProviderService and Health over server reflection, with descriptors a strict client can link", async () => {
    t = await startTestCoordinator({ macs: [] });
    const address = `127.0.0.1:${t.coordinator.grpcPort}`;
    const list = await reflect(address, { list_services: "*" });
    const names = list.list_services_response?.service.map((s) => s.name).sort() ?? [];
    assert.deepEqual(names, ["coordinator.provider.v1.ProviderService", "grpc.health.v1.Health"]);

    // Every service's file resolves and links (fully qualified references, proper map entries): what grpcurl and
    // buf curl need before they can call anything.
    for (const service of names) {
      const file = await reflect(address, { file_containing_symbol: service });
      assert.equal(file.error_response, undefined, file.error_response?.error_message);
      const protos = (file.file_descriptor_response?.file_descriptor_proto ?? []).map((b) =>
        fromBinary(FileDescriptorProtoSchema, b),
      );
      const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: protos }));
      assert.ok(registry.getService(service), `${service} links from its reflected files`);
    }
  });

  it("answers buf curl through reflection alone: methods listed, Health/Check called", async () => {
    t = await startTestCoordinator({ macs: [] });
    const url = `http://127.0.0.1:${t.coordinator.grpcPort}`;
    const bufCurl = (...args: string[]) =>
      promisify(execFile)(path.resolve("node_modules/.bin/buf"), [
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        ...args,
      ]);
    const methods = (await bufCurl("--list-methods", url)).stdout.trim().split("\n");
    assert.deepEqual(methods, [
      "coordinator.provider.v1.ProviderService/Connect",
      "grpc.health.v1.Health/Check",
      "grpc.health.v1.Health/Watch",
    ]);
    assert.deepEqual(JSON.parse((await bufCurl("-d", '{"service":""}', `${url}/grpc.health.v1.Health/Check`)).stdout), {
      status: "SERVING",
    });
  });

  it("counts every migration as pending on an empty database and none once migrated (what /readyz waits for)", async () => {
    const testDb = await createTestDatabase();
    const opened = await openDatabase({ databaseUrl: testDb.url, migrate: false });
    try {
      assert.deepEqual(await pendingMigrations(opened.db), Object.keys(migrations).sort());
      await migrateToLatest(opened.db);
      assert.deepEqual(await pendingMigrations(opened.db), []);
    } finally {
      await opened.close();
      await testDb.close();
    }
  });
});
