/**
 * gRPC server reflection (v1 and v1alpha), so `buf curl` and grpcurl can list
 * and call the service with no local copy of the proto. Fed from the
 * descriptor set `buf build` writes at build time (dist/proto/liveswap.binpb,
 * the well-known types included). The files go to @grpc/reflection as the
 * bytes buf wrote: proto-loader (from a .proto, or even from this descriptor
 * set) rebuilds them and drops their imports, so clients could not resolve
 * google.protobuf.Value.
 */
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import type { Server } from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../common/logger.js';

/** Written by `npm run build` (buf build); this module runs from dist/src/control. */
export const DESCRIPTOR_SET = fileURLToPath(new URL('../../proto/liveswap.binpb', import.meta.url));

export function addReflectionService(server: Server, log: Logger): void {
  let image: Buffer;
  try {
    image = fs.readFileSync(DESCRIPTOR_SET);
  } catch {
    log.warn(`server reflection is off: ${DESCRIPTOR_SET} is missing (npm run build writes it)`);
    return;
  }
  const definition = { 'liveswap.v1': { fileDescriptorProtos: fileDescriptorProtos(image) } };
  new ReflectionService(definition as unknown as ConstructorParameters<typeof ReflectionService>[0]).addToServer(server);
}

/** The serialized FileDescriptorProtos of a FileDescriptorSet (or buf image): its field 1, repeated. */
export function fileDescriptorProtos(set: Uint8Array): Uint8Array[] {
  const reader = new BinaryReader(set);
  const files: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) files.push(reader.bytes());
    else reader.skip(wireType);
  }
  return files;
}
