/**
 * grpc.health.v1.Health, on the control server and on the health port
 * (health-port.ts, for Kubernetes gRPC probes): SERVING, for "" and for
 * liveswap.v1.LiveswapService, while the pool has at least its N workers
 * ready; NOT_SERVING otherwise (nothing started yet, a crash or a Kill until
 * the replacements are ready, shutting down). /readyz says the same.
 * Open without a token, so its one stream, Watch, is capped: past
 * `maxWatches` open at once, more get RESOURCE_EXHAUSTED (each open watch
 * holds a call and a listener; 20,000 of them cost the master 218 MB).
 */
import { status, type Server, type ServerWritableStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { Master } from '../supervisor/master.js';

export const SERVICE_NAME = 'liveswap.v1.LiveswapService';
const RECHECK_MS = 500;

/** Ready workers ≥ pool size, and why not when not. */
export function readiness(master: Master): { ready: boolean; reason: string } {
  if (master.isStopping) return { ready: false, reason: 'the master is stopping' };
  const s = master.status();
  if (s.target === '') return { ready: false, reason: 'nothing started yet' };
  const counted = `${s.counts.ready} of ${s.forks} worker(s) ready`;
  return { ready: s.counts.ready >= s.forks, reason: counted };
}

export function servingStatus(master: Master): ServingStatus {
  return readiness(master).ready ? 'SERVING' : 'NOT_SERVING';
}

export interface HealthFollower {
  /** Stops following the master (the status stays as it is). */
  stop(): void;
  /**
   * A successor master serves from here: SERVING, for as long as this
   * (draining) master still answers a probe on an open connection.
   */
  handOver(): void;
}

/** Adds the health service, following the master's readiness. */
export function addHealthService(server: Server, master: Master, maxWatches: number): HealthFollower {
  const health = new HealthImplementation();
  let last: ServingStatus | undefined;
  let handedOver = false;
  const update = () => {
    const now: ServingStatus = handedOver ? 'SERVING' : servingStatus(master);
    if (now === last) return;
    last = now;
    health.setStatus('', now);
    health.setStatus(SERVICE_NAME, now);
  };
  update();
  health.addToServer(cappingWatches(server, maxWatches));
  // Transitions and the end of each operation move the status at once (a
  // Start names its target only after its last worker's transition); the
  // timer catches what moves without either (Die before any worker has drained).
  master.on('transition', update);
  master.on('idle', update);
  const timer = setInterval(update, RECHECK_MS).unref();
  const stop = () => {
    master.off('transition', update);
    master.off('idle', update);
    clearInterval(timer);
  };
  return {
    stop,
    handOver() {
      handedOver = true;
      update();
      stop();
    },
  };
}

/** `server`, as addToServer sees it: the same, with the Watch handler wrapped in a count of open watches. */
function cappingWatches(server: Server, maxWatches: number): Server {
  let open = 0;
  const addService: Server['addService'] = (definition, implementation: UntypedServiceImplementation) => {
    const watch = implementation.watch as (call: ServerWritableStream<unknown, unknown>) => void;
    const capped = (call: ServerWritableStream<unknown, unknown>) => {
      if (open >= maxWatches) {
        call.emit('error', { code: status.RESOURCE_EXHAUSTED, details: `too many health watches open (${maxWatches}); use Check, or close one` });
        return;
      }
      open++;
      let closed = false;
      const close = () => {
        if (closed) return;
        closed = true;
        open--;
      };
      call.once('cancelled', close);
      call.once('close', close);
      call.once('finish', close);
      call.once('error', close);
      watch(call);
    };
    server.addService(definition, { ...implementation, watch: capped });
  };
  return { addService } as Server;
}
