/**
 * The master's settings: defaults filled in one place, every value checked
 * before anything starts (INVALID_ARGUMENT with the reason otherwise).
 */
import os from 'node:os';
import { DEFAULTS, MAX_FORKS } from './defaults.js';
import { invalidArgument } from './errors.js';
import { resolveTarget } from './target.js';

/**
 * listening: ready once a server listens (in an upgrade: on every address the
 * old workers share); first-listen: once any server listens, whatever the old
 * workers served (a release that moves or drops a port); message: on
 * `process.send({ liveswap: 'ready' })`.
 */
export type ReadyMode = 'listening' | 'first-listen' | 'message';

/** When the old version stops taking new connections; see supervisor/upgrade.ts. */
export type Cutover = 'ready' | 'stable';

export interface MasterConfig {
  forks: number;
  readyMode: ReadyMode;
  readyTimeoutMs: number;
  drainTimeoutMs: number;
  stableMs: number;
  /** New workers an upgrade boots at once; see upgrade.ts. */
  maxSurge: number;
  /** When the old version stops taking connections; see upgrade.ts. */
  cutover: Cutover;
  /** Processes kept booted ahead of time (launcher.ts); undefined: as many as one upgrade boots at once. */
  spares?: number;
  /** Absolute path of the pre-upgrade hook module, if any. */
  preUpgrade?: string;
  hookTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  backoffResetMs: number;
}

/** Fills in defaults and checks every setting; throws INVALID_ARGUMENT on a bad one. */
export function resolveMasterConfig(partial: Partial<MasterConfig> = {}): MasterConfig {
  const config: MasterConfig = {
    forks: partial.forks ?? DEFAULTS.forks,
    readyMode: partial.readyMode ?? 'listening',
    readyTimeoutMs: partial.readyTimeoutMs ?? DEFAULTS.readyTimeoutMs,
    drainTimeoutMs: partial.drainTimeoutMs ?? DEFAULTS.drainTimeoutMs,
    stableMs: partial.stableMs ?? DEFAULTS.stableMs,
    maxSurge: partial.maxSurge ?? os.availableParallelism(),
    cutover: partial.cutover ?? DEFAULTS.cutover,
    ...(partial.spares !== undefined && { spares: partial.spares }),
    hookTimeoutMs: partial.hookTimeoutMs ?? DEFAULTS.hookTimeoutMs,
    backoffInitialMs: partial.backoffInitialMs ?? DEFAULTS.backoffInitialMs,
    backoffMaxMs: partial.backoffMaxMs ?? DEFAULTS.backoffMaxMs,
    backoffResetMs: partial.backoffResetMs ?? DEFAULTS.backoffResetMs,
    ...(partial.preUpgrade !== undefined && { preUpgrade: resolveHook(partial.preUpgrade) }),
  };
  checkForks(config.forks);
  for (const key of ['readyTimeoutMs', 'drainTimeoutMs', 'hookTimeoutMs'] as const) {
    checkDuration(key, config[key], 1);
  }
  for (const key of ['stableMs', 'backoffInitialMs', 'backoffMaxMs', 'backoffResetMs'] as const) {
    checkDuration(key, config[key], 0);
  }
  if (!Number.isInteger(config.maxSurge) || config.maxSurge < 1 || config.maxSurge > MAX_FORKS) {
    throw invalidArgument(`maxSurge must be a whole number from 1 to ${MAX_FORKS}, got ${config.maxSurge}`);
  }
  if (config.spares !== undefined && (!Number.isInteger(config.spares) || config.spares < 0 || config.spares > MAX_FORKS)) {
    throw invalidArgument(`spares must be a whole number from 0 to ${MAX_FORKS}, got ${config.spares}`);
  }
  if (!CUTOVERS.includes(config.cutover)) {
    throw invalidArgument(`cutover must be one of ${CUTOVERS.map((c) => `"${c}"`).join(', ')}, got "${String(config.cutover)}"`);
  }
  if (!READY_MODES.includes(config.readyMode)) {
    throw invalidArgument(`readyMode must be one of ${READY_MODES.map((m) => `"${m}"`).join(', ')}, got "${String(config.readyMode)}"`);
  }
  return config;
}

export function checkForks(forks: number): void {
  if (!Number.isInteger(forks) || forks < 1 || forks > MAX_FORKS) {
    throw invalidArgument(`forks must be a whole number from 1 to ${MAX_FORKS}, got ${forks}`);
  }
}

const READY_MODES: readonly ReadyMode[] = ['listening', 'first-listen', 'message'];
export const CUTOVERS: readonly Cutover[] = ['ready', 'stable'];

/** The largest delay a Node timer honours (about 24.8 days); beyond it a timer fires after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

function checkDuration(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min || value > MAX_TIMER_MS) {
    throw invalidArgument(`${name} must be a whole number of milliseconds from ${min} to ${MAX_TIMER_MS}, got ${value}`);
  }
}

/** A per-call duration: absent or 0 means the master's default; anything else must be a valid timer. */
export function checkCallDurations(durations: Record<string, number | undefined>): void {
  for (const [name, value] of Object.entries(durations)) {
    if (value !== undefined && value !== 0) checkDuration(name, value, 1);
  }
}

function resolveHook(hook: string): string {
  try {
    return resolveTarget(hook);
  } catch (error) {
    throw invalidArgument((error as Error).message.replace(/^target/, 'pre-upgrade hook'));
  }
}
