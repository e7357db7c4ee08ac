/**
 * gRPC clients of the greeter fixture (test/fixtures/grpc), made as the
 * grpc-js examples make them (proto-loader). Each client is its own channel
 * with its own connection: grpc-js otherwise shares one connection between
 * channels to the same address.
 */
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { answersSentAfter, SLOW_MS, type Scenario } from './acceptance.js';
import { runLoops, type Load } from './load.js';
import { fixture } from './paths.js';

interface HelloRequest {
  name?: string;
  delay_ms?: number;
  tag?: string;
}
type GreeterClient = grpc.Client & {
  sayHello(request: HelloRequest, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, reply?: { message: string }) => void): void;
};

const definition = protoLoader.loadSync(fixture('grpc/greeter.proto'), { keepCase: true, defaults: true });
const Greeter = (grpc.loadPackageDefinition(definition).fixture as grpc.GrpcObject).Greeter as unknown as new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options: grpc.ChannelOptions,
) => GreeterClient;

export function greeterClient(port: number): GreeterClient {
  return new Greeter(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
}

/** SayHello: the version that answered, or the call's error (a grpc.ServiceError with its status code). */
export function sayHello(client: GreeterClient, request: HelloRequest = {}, deadlineMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    client.sayHello(request, { deadline: Date.now() + deadlineMs }, (error, reply) => (error ? reject(error) : resolve(reply!.message)));
  });
}

/** One channel per client, each looping SayHello; failures are counted by status code name. */
export function startGreeterLoad(clients: GreeterClient[], { maxRequests = 20_000 } = {}): Load {
  const call = (client: GreeterClient) => () =>
    sayHello(client, {}, 5000).catch((error: grpc.ServiceError) => {
      throw Object.assign(new Error(error.details), { code: grpc.status[error.code] });
    });
  return runLoops(clients.map(call), { maxRequests });
}

/**
 * The acceptance scenario of the greeter (helpers/acceptance.ts): `channels`
 * channels looping SayHello, and each slow call on a channel of its own, so
 * that the slow calls spread over the old workers.
 */
export function greeterScenario(channels: number): Scenario<Load> {
  return {
    v1: fixture('grpc/v1.js'),
    v2: fixture('grpc/v2.js'),
    load: (port) => {
      const clients = Array.from({ length: channels }, () => greeterClient(port));
      const load = startGreeterLoad(clients);
      return { ...load, stop: () => load.stop().finally(() => clients.forEach((client) => client.close())) };
    },
    flowing: (load) => load.peek().length > 0,
    async slow(port, tag) {
      const client = greeterClient(port);
      try {
        return await sayHello(client, { delay_ms: SLOW_MS, tag }, SLOW_MS + 10_000);
      } finally {
        client.close();
      }
    },
    settle: answersSentAfter,
  };
}
