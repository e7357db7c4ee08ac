/**
 * The app's listening sockets, as the master holds them: what a self-upgrade
 * hands to the successor.
 *
 * node:cluster's primary listens for its workers (round-robin scheduling, the
 * default outside Windows): for each address a RoundRobinHandle creates a
 * server with net.createServer, listens with one options object, and on
 * `listening` keeps the server's handle and drops the server
 * (lib/internal/cluster/round_robin_handle.js). That handle is not reachable
 * from outside, so the master records it as it is made: listen() is wrapped
 * once, and a `listening` listener added before the RoundRobinHandle's own
 * reads the handle while the server still has it. A handle the primary drops
 * this way (the server's `_handle` is null right after) is a cluster
 * listener; the master's own servers (control, metrics) keep theirs.
 *
 * A successor master starts with inherited descriptors. Its workers listen on
 * them (worker/inherited-listeners.ts rewrites `listen(port, host)` to
 * `listen({ fd })`, so the primary listens on its own fd: the same kernel
 * socket and accept queue). Once the primary closes such a descriptor (the
 * last worker on it left), its number is forgotten so that no later listen
 * can reach a descriptor the process has reused for something else.
 */
import cluster from 'node:cluster';
import net from 'node:net';
import { countHandoffs, followHandoffs, untilTaken } from './held-connections.js';
import { LISTEN_FDS_ENV, listenerKey } from '../common/handover.js';

/** A libuv stream handle (TCPWrap, PipeWrap): `fd` is -1 once it is closed. */
export interface ListenHandle {
  readonly fd: number;
  close(callback?: () => void): void;
}

interface Recorded {
  key: string;
  handle: ListenHandle;
  server: net.Server;
}

const recorded: Recorded[] = [];
/** Inherited descriptor → its key, while no primary has closed it. */
const inherited = new Map<number, string>();
let installed = false;

/** Start recording (once per master process, before any worker listens). */
export function recordClusterListeners(): void {
  if (installed) return;
  installed = true;
  cluster.on('fork', followHandoffs);
  const originalListen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    const options = args[0];
    if (args.length === 1 && typeof options === 'object' && options !== null) {
      const o = options as { port?: number; host?: string | null; path?: string; fd?: number };
      const key = typeof o.fd === 'number' ? inherited.get(o.fd) : 'port' in o || 'path' in o ? listenerKey(o.host, o.port, o.path) : undefined;
      if (key !== undefined) {
        this.once('listening', () => {
          const handle = (this as unknown as { _handle: ListenHandle | null })._handle;
          if (!handle) return;
          recorded.push({ key, handle, server: this });
          if (typeof o.fd === 'number') forgetOnClose(handle, o.fd);
          // The RoundRobinHandle's own 'listening' listener runs next, in this
          // same emit: it drops the server's handle and sets onconnection.
          queueMicrotask(() => {
            if ((this as unknown as { _handle: unknown })._handle === null) countHandoffs(handle);
          });
        });
      }
    }
    return (originalListen as (...a: unknown[]) => net.Server).apply(this, args);
  } as typeof originalListen;
}

/** The cluster listeners open now, one per key. */
export function clusterListeners(): { key: string; handle: ListenHandle }[] {
  const open = new Map<string, ListenHandle>();
  for (const { key, handle, server } of recorded) {
    const droppedByPrimary = (server as unknown as { _handle: unknown })._handle === null;
    if (droppedByPrimary && handle.fd >= 0 && !open.has(key)) open.set(key, handle);
  }
  // Forget the closed ones.
  for (let i = recorded.length - 1; i >= 0; i--) if (recorded[i]!.handle.fd < 0) recorded.splice(i, 1);
  return [...open].map(([key, handle]) => ({ key, handle }));
}

/**
 * A successor's inherited listeners: its workers are told to listen on them
 * (LISTEN_FDS_ENV, read by cluster.fork from process.env) until the primary
 * closes one.
 */
export function inheritListeners(listeners: readonly { key: string; fd: number }[]): void {
  for (const { key, fd } of listeners) inherited.set(fd, key);
  publish();
}

/** The primary is closing the handle it made on an inherited descriptor: that number is no longer ours. */
function forgetOnClose(handle: ListenHandle, fd: number): void {
  const close = handle.close.bind(handle);
  (handle as { close: ListenHandle['close'] }).close = (callback) => {
    inherited.delete(fd);
    publish();
    close(callback);
  };
}

function publish(): void {
  if (inherited.size === 0) delete process.env[LISTEN_FDS_ENV];
  else process.env[LISTEN_FDS_ENV] = JSON.stringify(Object.fromEntries([...inherited].map(([fd, key]) => [key, fd])));
}

/**
 * Past this, stopAccepting gives up waiting: a worker that never answers
 * (stuck in a loop, or gone with a connection on its way) must not hold the
 * old master forever. What is still queued then is reset by node:cluster.
 */
export const SETTLE_MAX_MS = 10_000;

/**
 * A master whose successor serves stops accepting on the shared sockets
 * before it drains its workers. A RoundRobinHandle queues connections it
 * accepted while no worker was free, and when its last worker leaves it
 * closes whatever is still queued (the client gets ECONNRESET); one handed
 * back by a worker that closed meanwhile joins that queue. So: close the
 * accepting handles (the kernel's queue is the successor's now; the
 * primary's own close later is a no-op on a closed handle), then wait until
 * workers have taken every connection accepted here. A worker busy for a
 * while (a long synchronous handler, a GC pause on a loaded machine) takes
 * its share when it is free again; waiting for a quiet moment instead let
 * the drain begin with connections still queued (held-connections.ts
 * counts them). Resolves with how many were left when it gave up (0 when
 * all were taken).
 */
export async function stopAccepting(maxWaitMs = SETTLE_MAX_MS): Promise<number> {
  for (const { handle } of clusterListeners()) handle.close();
  return untilTaken(maxWaitMs);
}
