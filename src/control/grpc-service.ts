/**
 * The generated service definition (ts-proto's generic definition: names,
 * message codecs, streaming flags), as grpc-js serves it. The definition is
 * generated without grpc-js in it so that the client, which speaks gRPC over
 * node:http2 directly (client/transport.ts), can load it without loading
 * grpc-js; this file is where the server side meets grpc-js.
 */
import type { handleServerStreamingCall, handleUnaryCall, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { LiveswapServiceDefinition } from '../gen/liveswap/v1/liveswap.js';

type Methods = typeof LiveswapServiceDefinition.methods;
type RequestOf<M extends Methods[keyof Methods]> = ReturnType<M['requestType']['decode']>;
type ResponseOf<M extends Methods[keyof Methods]> = ReturnType<M['responseType']['decode']>;

/** One handler per RPC, typed by its messages (what ts-proto's grpc-js output calls the Server interface). */
export type LiveswapServiceServer = {
  [K in keyof Methods]: Methods[K]['responseStream'] extends true
    ? handleServerStreamingCall<RequestOf<Methods[K]>, ResponseOf<Methods[K]>>
    : handleUnaryCall<RequestOf<Methods[K]>, ResponseOf<Methods[K]>>;
} & UntypedServiceImplementation;

/** The definition as grpc-js's addService takes it: a path and (de)serializers per method. */
export const LiveswapServiceService: ServiceDefinition = Object.fromEntries(
  Object.entries(LiveswapServiceDefinition.methods).map(([key, method]) => {
    const { requestType, responseType } = method as {
      requestType: { encode(m: unknown): { finish(): Uint8Array }; decode(b: Uint8Array): unknown };
      responseType: { encode(m: unknown): { finish(): Uint8Array }; decode(b: Uint8Array): unknown };
    };
    return [
      key,
      {
        path: `/${LiveswapServiceDefinition.fullName}/${method.name}`,
        requestStream: method.requestStream,
        responseStream: method.responseStream,
        requestSerialize: (value: unknown) => Buffer.from(requestType.encode(value).finish()),
        requestDeserialize: (bytes: Buffer) => requestType.decode(bytes),
        responseSerialize: (value: unknown) => Buffer.from(responseType.encode(value).finish()),
        responseDeserialize: (bytes: Buffer) => responseType.decode(bytes),
      },
    ];
  }),
);
