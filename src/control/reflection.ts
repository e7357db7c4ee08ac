/**
 * gRPC server reflection (v1 and v1alpha), so `buf curl` and grpcurl can list
 * and call the service with no local copy of the proto. Fed from the
 * descriptor set `buf build` writes at build time (dist/proto/liveswap.binpb,
 * the well-known types included). The files go to @grpc/reflection as the
 * bytes buf wrote: proto-loader (from a .proto, or even from this descriptor
 * set) rebuilds them and drops their imports, so clients could not resolve
 * google.protobuf.Value.
 *
 * @grpc/reflection writes an answer for every request it reads and never
 * waits: a client that sends requests and reads no answers made the master
 * buffer them all (1,000,000 requests: +270 MB). Here its stream stops
 * reading while an answer waits to be sent, so such a client is held back by
 * HTTP/2 flow control instead. It also needs a token (auth.ts).
 */
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import type { Server, ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
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
  new ReflectionService(definition as unknown as ConstructorParameters<typeof ReflectionService>[0]).addToServer(withBackPressure(server));
}

type Duplex = ServerDuplexStream<unknown, unknown>;

/** Reads no further request while an answer is waiting to be sent (write() said false), until 'drain'. */
function pausingWhenFull(call: Duplex): Duplex {
  const write = call.write.bind(call) as (chunk: unknown) => boolean;
  let paused = false;
  call.write = ((chunk: unknown) => {
    const more = write(chunk);
    if (!more && !paused) {
      paused = true;
      call.pause();
      call.once('drain', () => {
        paused = false;
        call.resume();
      });
    }
    return more;
  }) as Duplex['write'];
  return call;
}

/** `server`, as addToServer sees it: every handler it adds gets a call that honours back-pressure. */
function withBackPressure(server: Server): Server {
  const addService: Server['addService'] = (definition, implementation: UntypedServiceImplementation) => {
    const wrapped = Object.fromEntries(
      Object.entries(implementation).map(([name, handler]) => [name, (call: Duplex) => (handler as (call: Duplex) => void)(pausingWhenFull(call))]),
    );
    server.addService(definition, wrapped);
  };
  return { addService } as Server;
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
