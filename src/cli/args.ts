/**
 * The CLI's arguments: the yargs definition and the flags' relations (which
 * go together, which apply to which command). The values themselves are
 * checked where the API's are (common/config.ts, common/endpoint.ts), with
 * errors that name the flag (flags.ts): a bad argument is a usage error
 * (exit 2, one line), never a serialization error from deep inside.
 */
import yargs from 'yargs';
import { checkDurations, CUTOVERS, READY_MODES } from '../common/config.js';
import { DEFAULTS } from '../common/defaults.js';
import { checkEndpoint, checkTokenTransport, controlEndpoint } from '../common/endpoint.js';
import { flagOf, wantsTls } from './flags.js';
import { UsageError } from './report.js';

export const COMMANDS = ['start', 'upgrade', 'upgrade-master', 'kill', 'die', 'message', 'message-json', 'status', 'watch'] as const;
export type Command = (typeof COMMANDS)[number];

const CLIENT_COMMANDS = COMMANDS.filter((c) => c !== 'start');

/** Options that mean something only with some commands; anything else is refused, not ignored. */
const APPLIES_TO: Record<string, readonly Command[]> = {
  'pre-upgrade': ['start'],
  'hook-timeout': ['start'],
  'max-surge': ['start'],
  spares: ['start'],
  cutover: ['start'],
  'stable-ms': ['start'],
  forks: ['start'],
  'log-format': ['start'],
  'metrics-port': ['start'],
  'metrics-address': ['start'],
  // Issue 21 (deploy): follow a release link, probes on their own port, fleet rollouts.
  follow: ['start'],
  'health-port': ['start'],
  'health-address': ['start'],
  hosts: ['upgrade', 'status'],
  batch: ['upgrade'],
  'ready-timeout': ['start', 'upgrade', 'upgrade-master'],
  'ready-mode': ['start', 'upgrade'],
  'drain-timeout': ['start', 'upgrade', 'upgrade-master', 'die'],
  // Issue 22 (master self-upgrade).
  node: ['upgrade', 'upgrade-master'],
  force: ['die'],
  json: CLIENT_COMMANDS,
  token: CLIENT_COMMANDS,
  'token-file': ['start', ...CLIENT_COMMANDS],
  tls: CLIENT_COMMANDS,
  'tls-server-name': CLIENT_COMMANDS,
};

/** Options of TCP control only: a unix socket is protected by its file mode. */
const TCP_ONLY = ['token', 'token-file', 'state-dir', 'tls', 'tls-cert', 'tls-key', 'tls-ca', 'tls-server-name', 'insecure'] as const;

export function parser(argv: string[]) {
  return (
    yargs(argv)
      .scriptName('liveswap')
      .usage('liveswap: zero-downtime code hot-swap for Node.js servers\n\nUsage: liveswap <command> [options]')
      .option('start', { alias: 's', type: 'string', describe: 'Run a master in the foreground with workers on FILE', group: 'Commands:' })
      .option('upgrade', { alias: 'u', type: 'string', describe: 'Rolling upgrade of every worker to FILE', group: 'Commands:' })
      .option('upgrade-master', {
        type: 'boolean',
        describe: 'Replace the master process itself (a new liveswap, or --node PATH), keeping every socket open',
        group: 'Commands:',
      })
      .option('kill', { alias: 'k', type: 'boolean', describe: 'Kill every worker and respawn on the current code', group: 'Commands:' })
      .option('die', { alias: 'd', type: 'boolean', describe: 'Stop the workers (graceful drain) and quit the master', group: 'Commands:' })
      .option('message', { alias: 'm', type: 'string', describe: 'Send the string MSG to every ready worker', group: 'Commands:' })
      .option('message-json', { type: 'string', describe: 'Send a JSON value to every ready worker', group: 'Commands:' })
      .option('status', { type: 'boolean', describe: 'Print the worker table', group: 'Commands:' })
      .option('watch', { type: 'boolean', describe: 'Print worker events as they happen', group: 'Commands:' })
      .option('pre-upgrade', { type: 'string', describe: 'With -s: module that may veto upgrades (function (data, cb) or async)' })
      .option('hook-timeout', { type: 'number', describe: `With --pre-upgrade: ms the hook may take before it counts as a veto (default ${DEFAULTS.hookTimeoutMs})` })
      // No yargs defaults for these: an option given with a command it does not
      // apply to must be refused, so we need to see whether it was given.
      .option('forks', { alias: 'f', type: 'number', describe: `With -s: number of workers (default ${DEFAULTS.forks})` })
      .option('port', { alias: 'p', type: 'number', describe: `Control service port (default ${DEFAULTS.port})` })
      .option('address', { alias: 'a', type: 'string', describe: `Control service address (default ${DEFAULTS.address})` })
      .option('socket', { type: 'string', describe: 'Control over a unix socket at PATH (mode 0600) instead of TCP' })
      .option('ready-timeout', { type: 'number', describe: `ms a new worker may take to become ready (default ${DEFAULTS.readyTimeoutMs})` })
      .option('drain-timeout', { type: 'number', describe: `ms an old worker may take to drain before SIGKILL (default ${DEFAULTS.drainTimeoutMs})` })
      .option('ready-mode', {
        choices: READY_MODES,
        describe:
          'listening (default; in an upgrade, on every address the old workers share), first-listen (on any one server: a release that moves a port), or message (process.send({ liveswap: "ready" }))',
      })
      .option('max-surge', { type: 'number', describe: 'With -s: new workers an upgrade boots at once (default: forks or CPU cores, whichever is fewer)' })
      .option('spares', { type: 'number', describe: 'With -s: processes kept booted ahead of time so new workers skip Node\'s start-up (default: as many as --max-surge; 0: none)' })
      .option('cutover', {
        choices: CUTOVERS,
        describe:
          'With -s: ready (default: drain each old worker as soon as a new one is ready) or stable (the last old worker serves until the new ones pass the stability window)',
      })
      .option('stable-ms', { type: 'number', describe: `With -s: ms a new worker must stay up after ready before an upgrade counts it good (default ${DEFAULTS.stableMs})` })
      .option('node', { type: 'string', describe: 'With -u: the Node.js binary (absolute path) the new workers run on; with --upgrade-master: the one the new master runs on (default: the master\'s own)' })
      .option('force', { type: 'boolean', describe: 'With -d: kill workers at once instead of draining' })
      .option('json', { type: 'boolean', describe: 'Print results (and --watch events) as JSON' })
      .option('log-format', { choices: ['text', 'json'] as const, describe: 'With -s: master log format (default text)' })
      .option('metrics-port', { type: 'number', describe: 'With -s: serve Prometheus metrics at http://ADDR:PORT/metrics (0 picks a free port; unauthenticated)' })
      .option('metrics-address', { type: 'string', describe: `With --metrics-port: the address to serve metrics on (default ${DEFAULTS.address})` })
      .option('follow', { type: 'boolean', describe: 'With -s FILE: when FILE (or a symlink on the way, e.g. current -> releases/N) resolves to another file, upgrade to it' })
      .option('health-port', { type: 'number', describe: 'With -s: serve probes on PORT: grpc.health.v1 and HTTP GET /livez, /readyz (0 picks a free port; plaintext, no token, up/down only)' })
      .option('health-address', { type: 'string', describe: 'With --health-port: the address to serve probes on (default: the control address; any address, no TLS needed)' })
      .option('hosts', { type: 'string', describe: 'With -u or --status: every master in LIST (host:port,… or dns:NAME:PORT for each address NAME resolves to); -u rolls out one host at a time, the first as a canary, and rolls the upgraded ones back at the first failure' })
      .option('batch', { type: 'number', describe: 'With -u --hosts: hosts upgraded at once after the canary (default 1)' })
      .option('token', { type: 'string', describe: 'The master\'s control token; - reads it from stdin. Other users can see a value in ps: prefer --token-file or $LIVESWAP_TOKEN (default: $LIVESWAP_TOKEN, else the token file in the state directory)', group: 'Security (TCP control):' })
      .option('token-file', { type: 'string', describe: 'Read the token from this file (a 0600 file of yours), e.g. the master\'s read-only token file for monitoring. With -s: the token the master requires, instead of a random one (as $LIVESWAP_MASTER_TOKEN gives it); give every master of a fleet the same', group: 'Security (TCP control):' })
      .option('state-dir', { type: 'string', describe: 'Where the master writes its token file and clients look for it (default: $LIVESWAP_STATE_DIR, $XDG_RUNTIME_DIR/liveswap, ~/.liveswap)', group: 'Security (TCP control):' })
      .option('tls-cert', { type: 'string', describe: 'PEM certificate chain: the master\'s (with -s), or the client\'s for mTLS', group: 'Security (TCP control):' })
      .option('tls-key', { type: 'string', describe: 'PEM private key of --tls-cert', group: 'Security (TCP control):' })
      .option('tls-ca', { type: 'string', describe: 'PEM CA: with -s, clients must present a certificate it signed (mTLS); otherwise the CA to trust for the master\'s certificate', group: 'Security (TCP control):' })
      .option('tls-server-name', { type: 'string', describe: 'The name to check the master\'s certificate against (default: the address)', group: 'Security (TCP control):' })
      .option('tls', { type: 'boolean', describe: 'Connect with TLS, trusting the system\'s CAs (implied by --tls-ca, --tls-cert)', group: 'Security (TCP control):' })
      .option('insecure', { type: 'boolean', describe: 'Allow a non-loopback --address without TLS: the master serves, or the client sends the token, in clear text', group: 'Security (TCP control):' })
      // A flag given twice takes its last value, as in most CLIs (not a list).
      .parserConfiguration({ 'duplicate-arguments-array': false })
      .strict()
      .version(false)
      .help('help')
      .alias('help', 'h')
      .wrap(Math.min(100, process.stdout.columns || 100))
      .exitProcess(false)
      .fail((message, error) => {
        // yargs spreads some messages over several lines; ours is one.
        throw new UsageError((message || error?.message || 'invalid arguments').replace(/\s*\n\s*/g, ' '));
      })
  );
}

export type Args = Awaited<ReturnType<ReturnType<typeof parser>['parseAsync']>>;

function given(args: Args, name: string): boolean {
  const value = (args as Record<string, unknown>)[name];
  return value !== undefined && value !== false;
}

/** Which command the arguments ask for, once every argument has been checked. */
export function checkArgs(args: Args): Command {
  const commands = COMMANDS.filter((name) => given(args, name));
  if (commands.length === 0) {
    throw new UsageError('no command given: use -s FILE, -u FILE, -k, -d, -m MSG, --status or --watch (see liveswap --help)');
  }
  if (commands.length > 1) {
    throw new UsageError(`give one command at a time, got ${commands.map((c) => `--${c}`).join(' and ')}`);
  }
  const command = commands[0]!;

  for (const [option, commandsItAppliesTo] of Object.entries(APPLIES_TO)) {
    if (given(args, option) && !commandsItAppliesTo.includes(command)) {
      throw new UsageError(`--${option} does not apply to --${command} (only to ${commandsItAppliesTo.map((c) => `--${c}`).join(', ')})`);
    }
  }
  if (given(args, 'hook-timeout') && !given(args, 'pre-upgrade')) {
    throw new UsageError('--hook-timeout needs --pre-upgrade (there is no hook to time)');
  }
  if (command === 'upgrade' && !args.upgrade) throw new UsageError('-u needs the path of the new module');
  if (args.node === '') throw new UsageError('--node needs the path of a Node.js binary');
  if (command === 'message' && args.message === '') {
    throw new UsageError(`-m needs a message (to send an empty string, use --message-json '""')`);
  }

  if (args.socket !== undefined) {
    if (args.socket === '') throw new UsageError('--socket needs a path');
    if (args.port !== undefined || args.address !== undefined) {
      throw new UsageError('--socket and -p/-a are alternatives: give one or the other');
    }
  }
  checkSecurityArgs(args, command);
  if (given(args, 'metrics-address') && !given(args, 'metrics-port')) throw new UsageError('--metrics-address needs --metrics-port');
  checkDeployArgs(args);
  // A master checks its own settings as it starts (run.ts); a client's are checked before it dials.
  if (command !== 'start') {
    checkEndpoint(controlEndpoint(args), { spell: flagOf, dial: true });
    checkTokenTransport(controlEndpoint(args), { tls: wantsTls(args), insecure: args.insecure }, flagOf);
    checkDurations({ readyTimeoutMs: args['ready-timeout'], drainTimeoutMs: args['drain-timeout'] }, flagOf);
  }
  return command;
}

function checkSecurityArgs(args: Args, command: Command): void {
  for (const flag of [...TCP_ONLY, 'socket'] as const) {
    if (typeof args[flag] === 'string' && args[flag] === '') throw new UsageError(`--${flag} needs a value`);
  }
  if (args.socket !== undefined) {
    const tcpOnly = TCP_ONLY.find((flag) => given(args, flag));
    if (tcpOnly) throw new UsageError(`--${tcpOnly} applies to TCP control, not to --socket (the socket's file mode protects it)`);
    return;
  }
  if (given(args, 'token') && given(args, 'token-file')) throw new UsageError('--token and --token-file are alternatives: give one or the other');
  if (given(args, 'tls-cert') !== given(args, 'tls-key')) throw new UsageError('--tls-cert and --tls-key go together');
  if (command === 'start' && given(args, 'tls-ca') && !given(args, 'tls-cert')) {
    throw new UsageError('--tls-ca on the master requires client certificates, which needs TLS: give --tls-cert and --tls-key too');
  }
}

/** Issue 21's flags: --follow, --health-port. */
function checkDeployArgs(args: Args): void {
  if (given(args, 'follow') && !args.start) throw new UsageError('--follow needs -s FILE: the path to follow');
  if (given(args, 'health-address') && !given(args, 'health-port')) throw new UsageError('--health-address needs --health-port');
  if (given(args, 'batch') && !given(args, 'hosts')) throw new UsageError('--batch needs --hosts');
  if (args.batch !== undefined && (!Number.isInteger(args.batch) || args.batch < 1)) throw new UsageError(`--batch must be a whole number of at least 1, got ${args.batch}`);
  if (args.hosts !== undefined) {
    if (args.hosts === '') throw new UsageError('--hosts needs a list: host:port,… or dns:NAME:PORT');
    const single = ['port', 'address', 'socket'].find((flag) => given(args, flag));
    if (single) throw new UsageError(`--hosts and --${single} are alternatives: each host's address and port are in the list`);
  }
}
