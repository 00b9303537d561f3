/**
 * The provider port's operational services next to ProviderService: `grpc.health.v1.Health` (Kubernetes gRPC
 * probes, Envoy/grpc-health-probe) and server reflection (`grpcurl`, `buf curl --list-services`), both from the
 * official grpc-node packages.
 */
import type * as grpc from "@grpc/grpc-js";
import { toBinary, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import {
  file_coordinator_provider_v1_provider,
  ProviderService,
} from "../../gen/coordinator/provider/v1/provider_pb.js";
import { healthFileDescriptor } from "./grpc-health-descriptor.js";

/** The names the health service answers for: "" (the whole server, by convention) and ProviderService. */
export const healthServiceNames = ["", ProviderService.typeName] as const;

/** Switches every name in {@link healthServiceNames} between SERVING and NOT_SERVING (watchers are told). */
export interface HealthSwitch {
  setServing(serving: boolean): void;
}

/**
 * Adds Health (every name SERVING) and reflection over ProviderService and Health to `server`; call before
 * `bindAsync`. Returns the switch the coordinator flips to NOT_SERVING when it drains or closes.
 */
export function addIntrospectionServices(server: grpc.Server): HealthSwitch {
  const health = new HealthImplementation(Object.fromEntries(healthServiceNames.map((n) => [n, "SERVING" as const])));
  health.addToServer(server);
  new ReflectionService(reflectionPackage()).addToServer(server);
  return {
    setServing: (serving) => {
      for (const n of healthServiceNames) health.setStatus(n, serving ? "SERVING" : "NOT_SERVING");
    },
  };
}

type PackageDefinition = ConstructorParameters<typeof ReflectionService>[0];
type MessageTypeDefinition = Extract<PackageDefinition[string], { fileDescriptorProtos: Buffer[] }>;

/**
 * What the reflection service reads: it only looks at each entry's `fileDescriptorProtos` (serialized
 * FileDescriptorProtos), so one entry carries them all. Ours come from the descriptors protobuf-es embeds in gen/
 * (so they cannot drift from the wire code); Health's is written out in grpc-health-descriptor.ts.
 */
function reflectionPackage(): PackageDefinition {
  const files = [...withDependencies(file_coordinator_provider_v1_provider).map((f) => f.proto), healthFileDescriptor];
  const all: MessageTypeDefinition = {
    format: "Protocol Buffer 3 DescriptorProto",
    type: {} as MessageTypeDefinition["type"],
    fileDescriptorProtos: files.map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f))),
  };
  return { [ProviderService.typeName]: all };
}

/** `file` and every file it imports, transitively, each once. */
function withDependencies(file: DescFile, seen = new Set<string>()): DescFile[] {
  if (seen.has(file.name)) return [];
  seen.add(file.name);
  return [file, ...file.dependencies.flatMap((d) => withDependencies(d, seen))];
}
