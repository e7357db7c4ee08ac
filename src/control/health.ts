/**
 * grpc.health.v1.Health, on the control server and on the health port
 * (health-port.ts, for Kubernetes gRPC probes): SERVING, for "" and for
 * liveswap.v1.LiveswapService, while the pool has at least its N workers
 * ready; NOT_SERVING otherwise (nothing started yet, a crash or a Kill until
 * the replacements are ready, shutting down). /readyz says the same.
 */
import type { Server } from '@grpc/grpc-js';
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

/** Adds the health service; returns a function that stops following the master. */
export function addHealthService(server: Server, master: Master): () => void {
  const health = new HealthImplementation();
  let last: ServingStatus | undefined;
  const update = () => {
    const now = servingStatus(master);
    if (now === last) return;
    last = now;
    health.setStatus('', now);
    health.setStatus(SERVICE_NAME, now);
  };
  update();
  health.addToServer(server);
  // Transitions and the end of each operation move the status at once (a
  // Start names its target only after its last worker's transition); the
  // timer catches what moves without either (Die before any worker has drained).
  master.on('transition', update);
  master.on('idle', update);
  const timer = setInterval(update, RECHECK_MS).unref();
  return () => {
    master.off('transition', update);
    master.off('idle', update);
    clearInterval(timer);
  };
}
