/**
 * The one translation of the command line into the API's options (options.ts
 * for -s, ConnectOptions for every other command), and back: how an error
 * names a setting by its flag. No yargs here: start.ts imports it.
 */
import type { ConnectOptions } from '../client/index.js';
import type { Spell } from '../common/errors.js';
import { SUCCESSOR_ENV } from '../common/handover.js';
import { MASTER_TOKEN_ENV, readTokenFileArgument, readTokenFromStdin } from '../common/token-file.js';
import { fromHere, type MasterOptions } from '../options.js';
import type { Args } from './args.js';

/** The API option (options.ts) each flag of -s sets, one to one; the TLS files go together as `tls`. */
const OPTION_OF_FLAG = {
  forks: 'forks',
  port: 'port',
  address: 'address',
  socket: 'socket',
  'pre-upgrade': 'preUpgrade',
  'hook-timeout': 'hookTimeoutMs',
  'ready-timeout': 'readyTimeoutMs',
  'drain-timeout': 'drainTimeoutMs',
  'ready-mode': 'readyMode',
  'max-surge': 'maxSurge',
  spares: 'spares',
  cutover: 'cutover',
  'stable-ms': 'stableMs',
  'log-format': 'logFormat',
  'metrics-port': 'metricsPort',
  'metrics-address': 'metricsAddress',
  'state-dir': 'stateDir',
  insecure: 'insecure',
  follow: 'follow',
  'health-port': 'healthPort',
  'health-address': 'healthAddress',
} as const satisfies Record<string, keyof MasterOptions>;

const FLAG_OF_OPTION: Record<string, string> = {
  ...Object.fromEntries(Object.entries(OPTION_OF_FLAG).map(([flag, option]) => [option, `--${flag}`])),
  token: `--token-file (or $${MASTER_TOKEN_ENV})`,
  tls: '--tls-cert and --tls-key',
  clientTls: '--tls or --tls-ca',
};

/** How an error names a setting on the command line: by its flag. */
export const flagOf: Spell = (setting) => FLAG_OF_OPTION[setting] ?? setting;

/** `liveswap -s`: the API's options the flags ask for. */
export function masterOptionsOf(args: Args): MasterOptions {
  const options: Record<string, unknown> = {};
  for (const [flag, option] of Object.entries(OPTION_OF_FLAG)) {
    const value = (args as Record<string, unknown>)[flag];
    if (value !== undefined && value !== false) options[option] = value;
  }
  const token = masterToken(args);
  return {
    ...(options as Omit<MasterOptions, 'target'>),
    ...(token !== undefined && { token }),
    ...(args.start && { target: args.start }),
    ...(args['tls-cert'] !== undefined && {
      tls: { cert: args['tls-cert'], key: args['tls-key']!, ...(args['tls-ca'] !== undefined && { ca: args['tls-ca'] }) },
    }),
    foreground: true,
    spell: flagOf,
  };
}

/**
 * The token `-s` was given: --token-file PATH (checked as a client's token
 * file), else $LIVESWAP_MASTER_TOKEN over TCP (a Kubernetes Secret maps to
 * it), surrounding whitespace trimmed. The variable is removed here, before
 * any worker, hook or successor is started, so it is not in their
 * environment. A successor master reads neither: it keeps its
 * predecessor's tokens (handover.ts).
 */
function masterToken(args: Args): string | undefined {
  const fromEnv = process.env[MASTER_TOKEN_ENV]?.trim();
  delete process.env[MASTER_TOKEN_ENV];
  if (process.env[SUCCESSOR_ENV] === '1') return undefined;
  if (args['token-file'] !== undefined) return readTokenFileArgument(fromHere(args['token-file']));
  return args.socket === undefined ? fromEnv || undefined : undefined;
}

/** Does a client command connect with TLS? */
export function wantsTls(args: Args): boolean {
  return Boolean(args.tls || args['tls-ca'] || args['tls-cert'] || args['tls-server-name']);
}

/**
 * The token a client command was given: --token VALUE, --token - (the first
 * line of stdin), --token-file PATH (checked like the master's token files);
 * undefined to let the client find it ($LIVESWAP_TOKEN, the state directory).
 */
function givenToken(args: Args): string | undefined {
  if (args['token-file'] !== undefined) return readTokenFileArgument(fromHere(args['token-file']));
  if (args.token === '-') return readTokenFromStdin();
  return args.token;
}

/** Every other command: how the client reaches the master (endpoint, token, TLS). */
export function clientOptionsOf(args: Args): ConnectOptions {
  const useTls = wantsTls(args);
  const token = givenToken(args);
  return {
    ...(args.socket !== undefined ? { socket: args.socket } : { address: args.address, port: args.port }),
    ...(token !== undefined && { token }),
    ...(args.insecure && { insecure: true }),
    ...(args['state-dir'] !== undefined && { stateDir: fromHere(args['state-dir']) }),
    ...(useTls && {
      tls: {
        ...(args['tls-ca'] !== undefined && { ca: fromHere(args['tls-ca']) }),
        ...(args['tls-cert'] !== undefined && { cert: fromHere(args['tls-cert']), key: fromHere(args['tls-key']!) }),
        ...(args['tls-server-name'] !== undefined && { serverName: args['tls-server-name'] }),
      },
    }),
  };
}
