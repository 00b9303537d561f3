/**
 * Builds a grpc-js ServiceDefinition from a protobuf-es service descriptor, so the grpc-js server (the
 * coordinator) and grpc-js clients (the fleet simulator) share the generated schema with no hand-written
 * serializers.
 */
import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";

/**
 * A grpc-js service definition for every method of `service`. `requestDeserialize` replaces the generic
 * `fromBinary` for incoming requests (the coordinator's hand-rolled fast path for per-request provider frames).
 */
export function grpcServiceDefinition<T extends GenServiceMethods>(
  service: GenService<T>,
  o: { requestDeserialize?: (b: Buffer) => unknown } = {},
): ServiceDefinition {
  const def: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const input = method.input as DescMessage;
    const output = method.output as DescMessage;
    def[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (m) => toBuffer(toBinary(input, m as MessageShape<DescMessage>)),
      requestDeserialize: o.requestDeserialize ?? ((b: Buffer) => fromBinary(input, b)),
      responseSerialize: (m) => toBuffer(toBinary(output, m as MessageShape<DescMessage>)),
      responseDeserialize: (b: Buffer) => fromBinary(output, b),
    };
  }
  return def as ServiceDefinition;
}

/** Wraps a Uint8Array as a Buffer without copying. */
function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
