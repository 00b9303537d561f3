/**
 * The descriptor of `grpc/health/v1/health.proto` (https://github.com/grpc/grpc-proto/blob/master/grpc/health/v1/health.proto)
 * for server reflection. grpc-health-check serves the service, but the descriptor its proto-loader builds is not
 * one protoc would write (relative type names, a map entry named `Statuses`), and strict reflection clients
 * (`buf curl`, Go's protodesc) refuse it; this one is written out field by field, as protoc emits it. It leaves
 * out `List` (and its messages), which grpc-health-check 2.1.0 does not implement (it answers UNIMPLEMENTED).
 */
import { create } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";

const pkg = "grpc.health.v1";
const optional = Label.OPTIONAL;

/** `grpc/health/v1/health.proto`: Check and Watch over HealthCheckRequest / HealthCheckResponse. */
export const healthFileDescriptor: FileDescriptorProto = create(FileDescriptorProtoSchema, {
  name: "grpc/health/v1/health.proto",
  package: pkg,
  syntax: "proto3",
  messageType: [
    {
      name: "HealthCheckRequest",
      field: [{ name: "service", jsonName: "service", number: 1, label: optional, type: Type.STRING }],
    },
    {
      name: "HealthCheckResponse",
      field: [
        {
          name: "status",
          jsonName: "status",
          number: 1,
          label: optional,
          type: Type.ENUM,
          typeName: `.${pkg}.HealthCheckResponse.ServingStatus`,
        },
      ],
      enumType: [
        {
          name: "ServingStatus",
          value: [
            { name: "UNKNOWN", number: 0 },
            { name: "SERVING", number: 1 },
            { name: "NOT_SERVING", number: 2 },
            // Used only by the Watch method.
            { name: "SERVICE_UNKNOWN", number: 3 },
          ],
        },
      ],
    },
  ],
  service: [
    {
      name: "Health",
      method: [
        { name: "Check", inputType: `.${pkg}.HealthCheckRequest`, outputType: `.${pkg}.HealthCheckResponse` },
        {
          name: "Watch",
          inputType: `.${pkg}.HealthCheckRequest`,
          outputType: `.${pkg}.HealthCheckResponse`,
          serverStreaming: true,
        },
      ],
    },
  ],
  options: {
    goPackage: "google.golang.org/grpc/health/grpc_health_v1",
    javaPackage: "io.grpc.health.v1",
    javaMultipleFiles: true,
    javaOuterClassname: "HealthProto",
    csharpNamespace: "Grpc.Health.V1",
  },
});
