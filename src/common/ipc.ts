/**
 * The IPC protocol between the master and its workers.
 *
 * Every message the master sends a worker is tagged `{ liveswap: <kind> }`, so
 * the worker runtime can tell its own messages from anything else and user
 * code never sees them. A broadcast travels inside that envelope and is
 * unwrapped in the worker, so the app receives the plain value even if the
 * value itself happens to look like one of our envelopes.
 */
import { hostPort } from './address.js';

/** Master → worker: deliver a broadcast value to the app. */
export interface BroadcastEnvelope {
  liveswap: 'broadcast';
  value: unknown;
}

/** Master → worker: stop accepting, finish in-flight work, then exit. */
export interface DrainEnvelope {
  liveswap: 'drain';
  /** Milliseconds until the master kills the worker. */
  timeoutMs: number;
}

/**
 * Master → spare: become a worker. A spare is a process the master forked
 * ahead of time with the worker runtime loaded but no app; this message
 * gives it the worker environment (target, generation, ready mode) and it
 * runs the app as a freshly forked worker would.
 */
export interface RunEnvelope {
  liveswap: 'run';
  env: Record<string, string>;
}

export type MasterToWorker = BroadcastEnvelope | DrainEnvelope | RunEnvelope;

/** Worker → master: the explicit ready signal (`process.send({ liveswap: 'ready' })`). */
export interface ReadyMessage {
  liveswap: 'ready';
}

/**
 * Worker → master: a server of the app started or stopped listening. The
 * worker runtime reports these itself (rather than the master relying on
 * cluster's `listening` event) so that closing is reported too, and so that
 * every worker formats an address the same way.
 */
export interface AddressMessage {
  liveswap: 'listening' | 'closed';
  address: string;
}

export function isAddressMessage(message: unknown): message is AddressMessage {
  if (typeof message !== 'object' || message === null) return false;
  const m = message as { liveswap?: unknown; address?: unknown };
  return (m.liveswap === 'listening' || m.liveswap === 'closed') && typeof m.address === 'string';
}

/** "127.0.0.1:1337", "[::]:8080", or a unix socket path. */
export function formatAddress(address: string | { address: string; port: number } | null): string | undefined {
  if (address === null) return undefined;
  return typeof address === 'string' ? address : hostPort(address.address, address.port);
}

export function isMasterEnvelope(message: unknown): message is MasterToWorker {
  if (typeof message !== 'object' || message === null) return false;
  const kind = (message as { liveswap?: unknown }).liveswap;
  return kind === 'broadcast' || kind === 'drain' || kind === 'run';
}

/** Spare → master: the runtime is loaded and listening for the run message. */
export interface SpareMessage {
  liveswap: 'spare';
}

export function isSpareMessage(message: unknown): message is SpareMessage {
  return typeof message === 'object' && message !== null && (message as { liveswap?: unknown }).liveswap === 'spare';
}

export function isReadyMessage(message: unknown): message is ReadyMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { liveswap?: unknown }).liveswap === 'ready'
  );
}

/** Environment variables the master sets on every worker. */
export const WorkerEnv = {
  target: 'LIVESWAP_TARGET',
  generation: 'LIVESWAP_GENERATION',
  workerId: 'LIVESWAP_WORKER_ID',
  readyMode: 'LIVESWAP_READY_MODE',
  /** Set (to "1") only on a spare, until it is told to run. */
  spare: 'LIVESWAP_SPARE',
} as const;

/** The event the worker runtime emits on `process` when a drain begins. */
export const DRAIN_EVENT = 'liveswap:drain';

/** What a `liveswap:drain` listener receives. */
export interface DrainNotice {
  /** Milliseconds until the master kills this worker. */
  timeoutMs: number;
  /** Epoch milliseconds at which the master kills this worker. */
  deadline: number;
}
