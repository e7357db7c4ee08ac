/**
 * gRPC's status codes, from grpc-js's constants module alone: the codes are
 * the protocol's, and loading grpc-js's index to get them would load its whole
 * client and server (see client/transport.ts).
 */
export { Status } from '@grpc/grpc-js/build/src/constants.js';
