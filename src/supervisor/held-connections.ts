/**
 * The connections node:cluster's primary holds: accepted by one of its
 * round-robin listeners (lib/internal/cluster/round_robin_handle.js) and not
 * yet taken by a worker, either queued (no worker free) or on their way to
 * a worker (sent with `newconn`, not acknowledged). A self-upgrading master
 * waits for them before it drains its workers (listeners.ts, stopAccepting).
 *
 * The primary closes its copy of such a connection exactly once when it lets
 * go of it: when a worker acknowledges it (`accepted: true`), or when the
 * last worker on that address leaves and the queue is dropped. So a
 * connection is held from the listener's `onconnection` until that close.
 * One path node:cluster never closes: a worker that dies with a connection
 * on its way to it (no acknowledgement ever comes, and the client waits
 * until the master exits). So each `newconn` is followed to its worker, and
 * when a worker exits, what it never acknowledged is closed here: its
 * client sees the connection close instead of hanging, and it is no longer
 * counted. (A send to a worker whose channel already closed drops the
 * connection before it is sent; that one stays counted, and the wait's
 * upper bound covers it.)
 */
import type { Worker } from 'node:cluster';
import type { ListenHandle } from './listeners.js';

interface Accepting {
  onconnection?: (error: number, client: ListenHandle | undefined) => void;
}

/** Held connection → the worker it was sent to (undefined while queued). */
const held = new Map<ListenHandle, number | undefined>();
let onEmpty: (() => void) | undefined;

/** Counts the connections a round-robin listener accepts (called once its RoundRobinHandle has set onconnection). */
export function countHandoffs(listener: ListenHandle): void {
  const accepting = listener as ListenHandle & Accepting;
  const distribute = accepting.onconnection;
  if (typeof distribute !== 'function') return;
  accepting.onconnection = (error, client) => {
    if (!error && client) hold(client);
    distribute(error, client);
  };
}

/** Follows the connections handed to a worker (cluster 'fork'). */
export function followHandoffs(worker: Worker): void {
  const child = worker.process as unknown as { send: (message: unknown, handle?: unknown, ...rest: unknown[]) => boolean };
  const send = child.send;
  if (typeof send !== 'function') return;
  /** `newconn` sequence number → the connection sent with it. */
  const sent = new Map<number, ListenHandle>();
  child.send = function (this: unknown, message, handle, ...rest) {
    const m = message as { cmd?: unknown; act?: unknown; seq?: unknown } | null;
    if (handle && m?.cmd === 'NODE_CLUSTER' && m.act === 'newconn' && typeof m.seq === 'number' && held.has(handle as ListenHandle)) {
      held.set(handle as ListenHandle, worker.id);
      sent.set(m.seq, handle as ListenHandle);
    }
    return send.call(this, message, handle, ...rest);
  };
  // The worker's answer. Accepted: the primary has closed its copy already. Refused: the primary queued it again
  // (or already sent it to another worker: then it is that worker's now).
  worker.process.on('internalMessage', (message: { cmd?: unknown; ack?: unknown; accepted?: unknown } | null) => {
    if (message?.cmd !== 'NODE_CLUSTER' || typeof message.ack !== 'number' || !('accepted' in message)) return;
    const client = sent.get(message.ack);
    if (!client) return;
    sent.delete(message.ack);
    if (held.get(client) === worker.id) held.set(client, undefined);
  });
  worker.once('exit', () => {
    for (const client of sent.values()) if (held.get(client) === worker.id) client.close();
    sent.clear();
  });
}

/** Accepted by a round-robin listener and not taken by a worker yet. */
export function connectionsInFlight(): number {
  return held.size;
}

/** Resolves once no connection is held, or after maxWaitMs, with how many are still held. */
export async function untilTaken(maxWaitMs: number): Promise<number> {
  if (held.size === 0) return 0;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(cap);
      onEmpty = undefined;
      resolve();
    };
    const cap = setTimeout(done, maxWaitMs);
    onEmpty = done;
  });
  return held.size;
}

function hold(client: ListenHandle): void {
  held.set(client, undefined);
  const close = client.close.bind(client);
  (client as { close: ListenHandle['close'] }).close = (callback) => {
    if (held.delete(client) && held.size === 0) onEmpty?.();
    close(callback);
  };
}
