/**
 * A client of the acceptance suite's gRPC app (test/fixtures/apps/grpc):
 * grpc.io's Greeter, loaded with proto-loader as grpc-js documents it.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { SLOW_MS, answersSentAfter, type Scenario } from './acceptance.js';
import { loopClients, type Load } from './load.js';
import { fixture } from './paths.js';

const definition = protoLoader.loadSync(fixture('apps/grpc/greeter.proto'), { keepCase: true, defaults: true });
const { greeter } = grpc.loadPackageDefinition(definition) as unknown as { greeter: { Greeter: grpc.ServiceClientConstructor } };

type Callback = (error: grpc.ServiceError | null, reply?: { message: string }) => void;
type Method = (request: object, options: grpc.CallOptions, callback: Callback) => grpc.ClientUnaryCall;

/**
 * A Greeter client on a channel of its own: grpc-js shares subchannels (and
 * so connections) between channels to the same address unless told not to,
 * and 16 channels are meant to be 16 HTTP/2 connections.
 */
export function greeterClient(port: number): grpc.Client {
  return new greeter.Greeter(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
}

/** One unary call; resolves with the reply's message (the server's version), rejects with the status name as `code`. */
function call(client: grpc.Client, method: 'sayHello' | 'slowHello', request: object, deadlineMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, Method>)[method]!.call(client, request, { deadline: Date.now() + deadlineMs }, (error, reply) => {
      if (error) reject(Object.assign(new Error(`${method}: ${error.message}`), { code: grpc.status[error.code] }));
      else resolve(reply!.message);
    });
  });
}

export const sayHello = (client: grpc.Client): Promise<string> => call(client, 'sayHello', { name: 'load' }, 5000);

/** A call the server answers after `ms`; it logs `slow request <tag> started` on arrival. */
export const slowHello = (client: grpc.Client, ms: number, tag: string): Promise<string> => call(client, 'slowHello', { ms, tag }, ms + 10_000);

/** `channels` clients, each on its own channel, looping SayHello. */
export function startGrpcLoad(port: number, channels: number): Load {
  const clients = Array.from({ length: channels }, () => greeterClient(port));
  return loopClients(
    clients.map((client) => () => sayHello(client)),
    { close: () => clients.forEach((client) => client.close()) },
  );
}

/**
 * The acceptance scenario of the gRPC app: `channels` channels looping
 * SayHello; each slow call on a channel of its own, so that they spread over
 * the old workers.
 */
export function grpcScenario(channels: number): Scenario<Load> {
  return {
    v1: fixture('apps/grpc/v1.js'),
    v2: fixture('apps/grpc/v2.js'),
    load: (port) => startGrpcLoad(port, channels),
    flowing: (load) => load.peek().length > 0,
    async slow(port, tag) {
      const client = greeterClient(port);
      try {
        return await slowHello(client, SLOW_MS, tag);
      } finally {
        client.close();
      }
    },
    settle: answersSentAfter,
  };
}
