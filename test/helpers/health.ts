/** A grpc.health.v1.Health client, as Kubernetes' gRPC probe and grpc_health_probe use it. */
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';

export type HealthResponse = { status: string };
export type HealthClient = grpc.Client & {
  check(request: { service: string }, callback: (error: grpc.ServiceError | null, response: HealthResponse) => void): void;
  watch(request: { service: string }): grpc.ClientReadableStream<HealthResponse>;
};
export const HealthClient = grpc.makeClientConstructor(healthService, 'grpc.health.v1.Health') as unknown as new (
  target: string,
  credentials: grpc.ChannelCredentials,
) => HealthClient;

/** Check(service): the status name, e.g. "SERVING". */
export function checkHealth(client: HealthClient, service = ''): Promise<string> {
  return new Promise((resolve, reject) => client.check({ service }, (error, response) => (error ? reject(error) : resolve(response.status))));
}
