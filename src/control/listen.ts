/** Binds a plain TCP server (the metrics and health ports): a failure is one LiveswapError naming the address and why. */
import type { AddressInfo, Server } from 'node:net';
import { hostPort } from '../common/address.js';
import { bindFailureReason, LiveswapError, Status } from '../common/errors.js';

/** Resolves with "127.0.0.1:9464" (the port actually bound) once `server` listens. */
export async function listenOn(server: Server, where: { address: string; port: number }, what: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(where.port, where.address, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((error: Error) => {
    throw new LiveswapError(Status.UNAVAILABLE, `cannot serve ${what} on ${hostPort(where.address, where.port)}: ${bindFailureReason(error)}`);
  });
  return hostPort(where.address, (server.address() as AddressInfo).port);
}
