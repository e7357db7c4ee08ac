/**
 * In a successor master's workers: listen on the inherited sockets.
 *
 * The successor inherited the old master's listening sockets as descriptors
 * and passes their numbers here (LISTEN_FDS_ENV, by host and port). An app's
 * `listen(port, host)` on one of them becomes, on its way to the primary, a
 * listen on that descriptor: node:cluster's primary then listens on its own
 * fd N (RoundRobinHandle with `fd`), which is the very socket the old master
 * accepted on, with its accept queue. Nothing is bound again, so no client
 * is ever refused. Any other listen is untouched.
 *
 * The rewrite is made in cluster's `_getServer`, the one call every listen of
 * a worker goes through with its address already resolved
 * (lib/internal/cluster/child.js).
 */
import cluster from 'node:cluster';
import { LISTEN_FDS_ENV, listenerKey } from '../common/handover.js';

interface ServerQuery {
  address?: string | null;
  port?: number;
  addressType?: number | string;
  fd?: number;
}

type GetServer = (obj: unknown, options: ServerQuery, cb: unknown) => unknown;

export function listenOnInheritedSockets(): void {
  const fds = parse(process.env[LISTEN_FDS_ENV]);
  delete process.env[LISTEN_FDS_ENV]; // The app's own children must not take these numbers for theirs.
  if (fds.size === 0 || !cluster.isWorker) return;
  const withServer = cluster as unknown as { _getServer?: GetServer };
  const original = withServer._getServer;
  if (typeof original !== 'function') return;
  withServer._getServer = function (this: unknown, obj, options, cb) {
    if (!(typeof options.fd === 'number' && options.fd >= 0)) {
      const key = options.addressType === -1 ? listenerKey(null, null, options.address ?? '') : listenerKey(options.address, options.port);
      const fd = fds.get(key);
      if (fd !== undefined) options = { ...options, fd };
    }
    return original.call(this, obj, options, cb);
  };
}

function parse(text: string | undefined): Map<string, number> {
  if (!text) return new Map();
  try {
    return new Map(Object.entries(JSON.parse(text) as Record<string, number>).filter(([, fd]) => Number.isInteger(fd)));
  } catch {
    return new Map();
  }
}
