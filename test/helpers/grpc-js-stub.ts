/**
 * A stock grpc-js client of the control service, built from the same
 * generated definition the master serves. For tests that send what the typed
 * client refuses to build (a Broadcast without a message, fuzzed fields), and
 * to show that a gRPC library's own client works against the master as well
 * as liveswap's (client/transport.ts).
 */
import {
  makeGenericClientConstructor,
  type CallOptions,
  type ChannelCredentials,
  type ClientReadableStream,
  type Client,
  type Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import type { LiveswapServiceDefinition } from '../../src/gen/liveswap/v1/liveswap.js';
import { LiveswapServiceService } from '../../src/control/grpc-service.js';

type Callback = (error: ServiceError | null, response?: unknown) => void;
type Unary = ((request: unknown, metadata: Metadata, callback: Callback) => unknown) &
  ((request: unknown, metadata: Metadata, options: CallOptions, callback: Callback) => unknown);
type Stream = (request: unknown, metadata?: Metadata) => ClientReadableStream<unknown>;
type Methods = typeof LiveswapServiceDefinition.methods;

export type GrpcJsStub = Client & { [K in keyof Methods]: Methods[K]['responseStream'] extends true ? Stream : Unary };

export const LiveswapServiceClient = makeGenericClientConstructor(LiveswapServiceService, 'LiveswapService') as unknown as new (
  address: string,
  credentials: ChannelCredentials,
) => GrpcJsStub;
