/** Binds a plain TCP server (the metrics and health ports): a failure is one LiveswapError naming the address and why. */
import type { AddressInfo, Server } from 'node:net';
import type { ListenHandle } from '../supervisor/listeners.js';
import { hostPort } from '../common/address.js';
import { bindFailureReason, LiveswapError, Status } from '../common/errors.js';

/**
 * Resolves with "127.0.0.1:9464" (the port actually bound) once `server`
 * listens: on `where`, or on `inheritedFd`, the same socket a replaced master
 * listened on (docs/self-upgrade.md), with nothing bound again.
 */
export async function listenOn(server: Server, where: { address: string; port: number }, what: string, inheritedFd?: number): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const listening = () => {
      server.off('error', reject);
      resolve();
    };
    if (inheritedFd === undefined) server.listen(where.port, where.address, listening);
    else server.listen({ fd: inheritedFd }, listening);
  }).catch((error: Error) => {
    throw new LiveswapError(Status.UNAVAILABLE, `cannot serve ${what} on ${hostPort(where.address, where.port)}: ${bindFailureReason(error)}`);
  });
  return hostPort(where.address, (server.address() as AddressInfo).port);
}

/** The listening socket under `server`, to hand to a successor master. */
export function listenerHandleOf(server: Server): ListenHandle | undefined {
  return (server as unknown as { _handle: ListenHandle | null })._handle ?? undefined;
}
