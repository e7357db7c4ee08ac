/**
 * The IPC protocol of a master self-upgrade (docs/self-upgrade.md), between
 * the keeper (the process a supervisor started), the master that asks for a
 * successor, and the successor. Every message is tagged `liveswapHandover`.
 * Listening sockets travel as inherited descriptors (keeper → successor) or
 * as handles on the IPC channel (a child master → the keeper); the numbers
 * in these messages are descriptors in the receiving process.
 */
import type { ReadyMode } from './config.js';

/** Set (to "1") on a successor master's environment, removed as it starts. */
export const SUCCESSOR_ENV = 'LIVESWAP_SUCCESSOR';
/**
 * Set by a successor master on its workers' environment while it holds
 * inherited listening sockets: JSON `{ key: fd }` (see listener-key.ts).
 */
export const LISTEN_FDS_ENV = 'LIVESWAP_LISTEN_FDS';

/** The release the successor boots: the one the old master serves now. */
export interface HandedRelease {
  target: string;
  requested: string;
  generation: number;
  readyMode: ReadyMode;
  execPath?: string;
  nodeVersion: string;
}

export interface Lineage {
  keeperPid: number;
  masterUpgrades: number;
}

/** What the old master hands over, the descriptors aside. */
export interface Succession {
  release: HandedRelease | undefined;
  forks: number;
  /** The TCP control tokens (full and read-only), kept so every client's token stays good (undefined on a unix socket). */
  tokens: { full: string; readOnly: string } | undefined;
  lineage: Lineage;
  /** How long the successor may take to be ready. */
  timeoutMs: number;
  node: string;
}

/** keeper → successor, first message: the succession and where its sockets are. */
export interface BeginMessage {
  liveswapHandover: 'begin';
  succession: Succession;
  listeners: { key: string; fd: number }[];
  controlFd: number;
}

/** successor → keeper (and keeper → the old master): the successor serves. */
export interface ReadyMessage {
  liveswapHandover: 'ready';
  pid: number;
  nodeVersion: string;
}

/** successor → keeper (and keeper → the old master): it could not take over. */
export interface FailedMessage {
  liveswapHandover: 'failed';
  reason: string;
  stderrTail: string[];
}

/** child master → keeper: one listening socket, its handle attached (the control listener has key "control"). */
export interface SocketMessage {
  liveswapHandover: 'socket';
  key: string;
}

/** child master → keeper, after its sockets: start a successor. */
export interface SpawnMessage {
  liveswapHandover: 'spawn';
  succession: Succession;
}

export type HandoverMessage = BeginMessage | ReadyMessage | FailedMessage | SocketMessage | SpawnMessage;

export function isHandoverMessage(message: unknown): message is HandoverMessage {
  return typeof message === 'object' && message !== null && typeof (message as { liveswapHandover?: unknown }).liveswapHandover === 'string';
}

/**
 * The key of a listening socket as node:cluster's primary is asked for it
 * (host and port, or a unix path), the same in a worker's listen request and
 * in the primary's listen: "127.0.0.1:8080", ":8080" (no host), "unix:/path".
 */
export function listenerKey(host: string | null | undefined, port: number | null | undefined, path?: string): string {
  return path !== undefined ? `unix:${path}` : `${host ?? ''}:${port ?? ''}`;
}

/** The key for the control listener among the sockets a child master sends the keeper. */
export const CONTROL_KEY = 'control';
/** The keys of the metrics and health-probe listeners among a successor's sockets: the master's own, not the app's. */
export const METRICS_KEY = 'metrics';
export const HEALTH_KEY = 'health';
export const MASTER_PORT_KEYS: readonly string[] = [METRICS_KEY, HEALTH_KEY];
