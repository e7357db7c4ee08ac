/**
 * The master's settings: defaults filled in one place, every value checked
 * before anything starts (INVALID_ARGUMENT with the reason otherwise).
 */
import os from 'node:os';
import { DEFAULTS, MAX_FORKS } from './defaults.js';
import { invalidArgument, optionName, SettingError, type Spell } from './errors.js';
import { resolveTarget } from './target.js';

/**
 * listening: ready once a server listens (in an upgrade: on every address the
 * old workers share); first-listen: once any server listens, whatever the old
 * workers served (a release that moves or drops a port); message: on
 * `process.send({ liveswap: 'ready' })`.
 */
export const READY_MODES = ['listening', 'first-listen', 'message'] as const;
export type ReadyMode = (typeof READY_MODES)[number];

/** When the old version stops taking new connections; see supervisor/upgrade.ts. */
export const CUTOVERS = ['ready', 'stable'] as const;
export type Cutover = (typeof CUTOVERS)[number];

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
  /** The absolute path to follow (--follow): when it resolves to another file, the master upgrades to it (follower.ts). */
  follow?: string;
  hookTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  backoffResetMs: number;
}

/**
 * Fills in defaults and checks every setting; throws a SettingError
 * (INVALID_ARGUMENT) naming the bad one as `spell` writes it.
 */
export function resolveMasterConfig(partial: Partial<MasterConfig> = {}, spell: Spell = optionName): MasterConfig {
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
    ...(partial.follow !== undefined && { follow: partial.follow }),
  };
  checkForks(config.forks, spell);
  checkDurations({ readyTimeoutMs: config.readyTimeoutMs, drainTimeoutMs: config.drainTimeoutMs, hookTimeoutMs: config.hookTimeoutMs }, spell);
  checkDurations({ stableMs: config.stableMs, backoffInitialMs: config.backoffInitialMs, backoffMaxMs: config.backoffMaxMs, backoffResetMs: config.backoffResetMs }, spell, 0);
  checkWhole(spell('maxSurge'), config.maxSurge, 1, MAX_FORKS);
  if (config.spares !== undefined) checkWhole(spell('spares'), config.spares, 0, MAX_FORKS);
  checkOneOf(spell('cutover'), config.cutover, CUTOVERS);
  checkOneOf(spell('readyMode'), config.readyMode, READY_MODES);
  return config;
}

export function checkForks(forks: number, spell: Spell = optionName): void {
  checkWhole(spell('forks'), forks, 1, MAX_FORKS);
}

/** The largest delay a Node timer honours (about 24.8 days); beyond it a timer fires after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

function checkWhole(name: string, value: number, min: number, max: number, unit = ''): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new SettingError(`${name} must be a whole number${unit} from ${min} to ${max}, got ${value}`);
  }
}

function checkOneOf<T extends string>(name: string, value: T, allowed: readonly T[]): void {
  if (!allowed.includes(value)) {
    throw new SettingError(`${name} must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, got "${String(value)}"`);
  }
}

/** Durations in milliseconds, each `min` (default 1) to MAX_TIMER_MS; an absent one is not checked. */
export function checkDurations(durations: Record<string, number | undefined>, spell: Spell = optionName, min = 1): void {
  for (const [name, value] of Object.entries(durations)) {
    if (value !== undefined) checkWhole(spell(name), value, min, MAX_TIMER_MS, ' of milliseconds');
  }
}

/** A per-call duration: absent or 0 means the master's default; anything else must be a valid timer. */
export function checkCallDurations(durations: Record<string, number | undefined>): void {
  checkDurations(Object.fromEntries(Object.entries(durations).filter(([, value]) => value !== 0)));
}

function resolveHook(hook: string): string {
  try {
    return resolveTarget(hook);
  } catch (error) {
    throw invalidArgument((error as Error).message.replace(/^target/, 'pre-upgrade hook'));
  }
}
