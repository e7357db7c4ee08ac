/**
 * The master's settings: defaults filled in one place, every value checked
 * before anything starts (INVALID_ARGUMENT with the reason otherwise).
 */
import { DEFAULTS, MAX_FORKS } from './defaults.js';
import { invalidArgument } from './errors.js';
import type { ReadyMode } from './launcher.js';
import { resolveTarget } from './target.js';

export interface MasterConfig {
  forks: number;
  readyMode: ReadyMode;
  readyTimeoutMs: number;
  drainTimeoutMs: number;
  stableMs: number;
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
  if (config.readyMode !== 'listening' && config.readyMode !== 'message') {
    throw invalidArgument(`readyMode must be "listening" or "message", got "${String(config.readyMode)}"`);
  }
  return config;
}

export function checkForks(forks: number): void {
  if (!Number.isInteger(forks) || forks < 1 || forks > MAX_FORKS) {
    throw invalidArgument(`forks must be a whole number from 1 to ${MAX_FORKS}, got ${forks}`);
  }
}

function checkDuration(name: string, value: number, min: number): void {
  // 24 days: the largest delay a Node timer honours.
  if (!Number.isInteger(value) || value < min || value > 2_147_483_647) {
    throw invalidArgument(`${name} must be a whole number of milliseconds from ${min} to 2147483647, got ${value}`);
  }
}

function resolveHook(hook: string): string {
  try {
    return resolveTarget(hook);
  } catch (error) {
    throw invalidArgument((error as Error).message.replace(/^target/, 'pre-upgrade hook'));
  }
}
