/**
 * The liveswap command line. `-s` runs a master in the foreground; every
 * other command is a gRPC client of a running master (src/client).
 *
 * Exit codes: 0 success, 1 the operation failed, 2 bad usage, 3 no master
 * reachable. Failures print one line on stderr, never a stack trace.
 */
import path from 'node:path';
import yargs from 'yargs';
import { connect, LiveswapClientError, type ConnectOptions, type LiveswapClient } from '../client/index.js';
import {
  BroadcastResponse,
  DieResponse,
  GetStatusResponse,
  KillResponse,
  ReadyMode,
  UpgradeResponse,
} from '../gen/liveswap/v1/liveswap.js';
import { MAX_TIMER_MS } from '../server/config.js';
import { DEFAULTS } from '../server/defaults.js';
import { LiveswapError } from '../server/errors.js';
import { runMaster } from '../server/run.js';
import { describeTransition, statusText, watchItemJson, watchItemText } from './format.js';

const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const;

class UsageError extends Error {}

/** How long -u/-k wait for the last progress lines after the reply. */
const PROGRESS_TAIL_MAX_MS = 2000;

const COMMANDS = ['start', 'upgrade', 'kill', 'die', 'message', 'message-json', 'status', 'watch'] as const;

function parser(argv: string[]) {
  return yargs(argv)
    .scriptName('liveswap')
    .usage('liveswap: zero-downtime code hot-swap for Node.js servers\n\nUsage: liveswap <command> [options]')
    .option('start', { alias: 's', type: 'string', describe: 'Run a master in the foreground with workers on FILE', group: 'Commands:' })
    .option('upgrade', { alias: 'u', type: 'string', describe: 'Rolling upgrade of every worker to FILE', group: 'Commands:' })
    .option('kill', { alias: 'k', type: 'boolean', describe: 'Kill every worker and respawn on the current code', group: 'Commands:' })
    .option('die', { alias: 'd', type: 'boolean', describe: 'Stop the workers (graceful drain) and quit the master', group: 'Commands:' })
    .option('message', { alias: 'm', type: 'string', describe: 'Send the string MSG to every ready worker', group: 'Commands:' })
    .option('message-json', { type: 'string', describe: 'Send a JSON value to every ready worker', group: 'Commands:' })
    .option('status', { type: 'boolean', describe: 'Print the worker table', group: 'Commands:' })
    .option('watch', { type: 'boolean', describe: 'Print worker events as they happen', group: 'Commands:' })
    .option('pre-upgrade', { type: 'string', describe: 'With -s: module that may veto upgrades (function (data, cb) or async)' })
    .option('hook-timeout', { type: 'number', describe: `With --pre-upgrade: ms the hook may take before it counts as a veto (default ${DEFAULTS.hookTimeoutMs})` })
    .option('forks', { alias: 'f', type: 'number', default: DEFAULTS.forks, describe: 'With -s: number of workers' })
    .option('port', { alias: 'p', type: 'number', default: DEFAULTS.port, describe: 'Control service port' })
    .option('address', { alias: 'a', type: 'string', default: DEFAULTS.address, describe: 'Control service address' })
    .option('socket', { type: 'string', describe: 'Control over a unix socket at PATH (mode 0600) instead of TCP' })
    .option('ready-timeout', { type: 'number', describe: `ms a new worker may take to become ready (default ${DEFAULTS.readyTimeoutMs})` })
    .option('drain-timeout', { type: 'number', describe: `ms an old worker may take to drain before SIGKILL (default ${DEFAULTS.drainTimeoutMs})` })
    .option('ready-mode', { choices: ['listening', 'message'] as const, describe: 'Ready when listening (default), or on process.send({ liveswap: "ready" })' })
    .option('force', { type: 'boolean', describe: 'With -d: kill workers at once instead of draining' })
    .option('json', { type: 'boolean', describe: 'Print results (and --watch events) as JSON' })
    .option('log-format', { choices: ['text', 'json'] as const, default: 'text' as const, describe: 'With -s: master log format' })
    .strict()
    .version(false)
    .help('help')
    .alias('help', 'h')
    .wrap(Math.min(100, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((message, error) => {
      throw new UsageError(message || error?.message || 'invalid arguments');
    });
}

type Args = Awaited<ReturnType<ReturnType<typeof parser>['parseAsync']>>;

function absolute(file: string): string {
  return path.resolve(process.cwd(), file);
}

function connectOptions(args: Args): ConnectOptions {
  return args.socket ? { socket: args.socket } : { address: args.address, port: args.port };
}

function readyModeOf(args: Args): ReadyMode {
  if (args['ready-mode'] === 'listening') return ReadyMode.READY_MODE_LISTENING;
  if (args['ready-mode'] === 'message') return ReadyMode.READY_MODE_MESSAGE;
  return ReadyMode.READY_MODE_UNSPECIFIED;
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function runStart(args: Args): Promise<number> {
  const target = args.start ? absolute(args.start) : undefined;
  const running = await runMaster({
    ...(target && { target }),
    control: args.socket ? { socket: args.socket } : { address: args.address, port: args.port },
    forks: args.forks,
    ...(args['pre-upgrade'] !== undefined && { preUpgrade: absolute(args['pre-upgrade']) }),
    ...(args['ready-timeout'] !== undefined && { readyTimeoutMs: args['ready-timeout'] }),
    ...(args['drain-timeout'] !== undefined && { drainTimeoutMs: args['drain-timeout'] }),
    ...(args['hook-timeout'] !== undefined && { hookTimeoutMs: args['hook-timeout'] }),
    ...(args['ready-mode'] !== undefined && { readyMode: args['ready-mode'] }),
    log: { format: args['log-format'] },
    foreground: true,
  });
  const { master, control, log } = running;
  const what = target ? `${master.config.forks} worker(s) ready on ${target}` : 'no workers yet (waiting for Start)';
  log.info(`master pid ${process.pid} up: ${what}; control on ${control!.target}`);
  await running.stopped;
  return EXIT.ok;
}

/** Runs an operation while printing the worker transitions it causes. */
async function withProgress<T>(client: LiveswapClient, quiet: boolean, operation: () => Promise<T>): Promise<T> {
  if (quiet) return operation();
  const abort = new AbortController();
  const events = client.watch({ signal: abort.signal });
  const first = await events.next(); // The snapshot: from here on, no transition is missed.
  if (first.done || first.value.event?.$case !== 'snapshot') return operation();
  let lastSeen = first.value.event.snapshot.sequence;
  const printing = (async () => {
    for await (const item of events) {
      if (item.event?.$case !== 'transition') continue;
      lastSeen = item.event.transition.sequence;
      print(`  ${describeTransition(item.event.transition)}`);
    }
  })().catch(() => {});
  try {
    return await operation();
  } finally {
    // Every transition the operation caused happened before its reply, but the
    // stream may deliver the last ones just after it: read up to the master's
    // current sequence number (bounded, in case the master went away).
    const upTo = (await client.status().catch(() => undefined))?.sequence ?? lastSeen;
    const deadline = Date.now() + PROGRESS_TAIL_MAX_MS;
    while (lastSeen < upTo && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    abort.abort();
    await printing;
  }
}

async function runClientCommand(command: (typeof COMMANDS)[number], args: Args): Promise<number> {
  const client = connect(connectOptions(args));
  const json = Boolean(args.json);
  try {
    switch (command) {
      case 'upgrade': {
        const result = await withProgress(client, json, () =>
          client.upgrade({
            target: absolute(args.upgrade!),
            readyMode: readyModeOf(args),
            readyTimeoutMs: args['ready-timeout'] ?? 0,
            drainTimeoutMs: args['drain-timeout'] ?? 0,
          }),
        );
        if (json) print(JSON.stringify(UpgradeResponse.toJSON(result)));
        else {
          const killed = result.killedAtDrainTimeout ? `; ${result.killedAtDrainTimeout} killed at the drain timeout` : '';
          print(`upgraded to generation ${result.generation} (${result.target}) in ${result.durationMs} ms: ${result.workers.length} worker(s) ready${killed}`);
        }
        return EXIT.ok;
      }
      case 'kill': {
        const result = await withProgress(client, json, () => client.kill());
        if (json) print(JSON.stringify(KillResponse.toJSON(result)));
        else print(`killed ${result.killed} worker(s); ${result.workers.length} new worker(s) ready (pids ${result.workers.map((w) => w.pid).join(', ')})`);
        return EXIT.ok;
      }
      case 'die': {
        const result = await client.die({ force: Boolean(args.force), drainTimeoutMs: args['drain-timeout'] ?? 0 });
        if (json) print(JSON.stringify(DieResponse.toJSON(result)));
        else print(`master stopped: ${result.stopped} worker(s) stopped, ${result.killed} killed`);
        return EXIT.ok;
      }
      case 'message':
      case 'message-json': {
        let value: unknown = args.message;
        if (command === 'message-json') {
          try {
            value = JSON.parse(args['message-json']!);
          } catch (error) {
            throw new UsageError(`--message-json is not valid JSON: ${(error as Error).message}`);
          }
        }
        const result = await client.broadcast(value);
        if (json) print(JSON.stringify(BroadcastResponse.toJSON(result)));
        else print(`delivered to ${result.delivered} worker(s) (ids ${result.workerIds.join(', ')})`);
        return EXIT.ok;
      }
      case 'status': {
        const result = await client.status();
        print(json ? JSON.stringify(GetStatusResponse.toJSON(result)) : statusText(result));
        return EXIT.ok;
      }
      case 'watch': {
        const abort = new AbortController();
        process.once('SIGINT', () => abort.abort());
        process.once('SIGTERM', () => abort.abort());
        for await (const item of client.watch({ signal: abort.signal })) {
          print(json ? watchItemJson(item) : watchItemText(item));
        }
        return EXIT.ok;
      }
      case 'start':
        throw new Error('unreachable');
    }
  } finally {
    client.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = await parser(argv).parseAsync();
  } catch (error) {
    process.stderr.write(`liveswap: ${(error as Error).message} (see liveswap --help)\n`);
    return EXIT.usage;
  }
  if (args.help) return EXIT.ok;
  const given = COMMANDS.filter((name) => args[name] !== undefined && args[name] !== false);
  if (given.length === 0) {
    process.stderr.write('liveswap: no command given: use -s FILE, -u FILE, -k, -d, -m MSG, --status or --watch (see liveswap --help)\n');
    return EXIT.usage;
  }
  if (given.length > 1) {
    process.stderr.write(`liveswap: give one command at a time, got ${given.map((c) => `--${c}`).join(' and ')}\n`);
    return EXIT.usage;
  }
  const command = given[0]!;
  try {
    if (command === 'upgrade' && !args.upgrade) throw new UsageError('-u needs the path of the new module');
    for (const flag of ['ready-timeout', 'drain-timeout', 'hook-timeout'] as const) {
      const value = args[flag];
      if (value !== undefined && !(Number.isInteger(value) && value >= 1 && value <= MAX_TIMER_MS)) {
        throw new UsageError(`--${flag} must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS}, got ${value}`);
      }
    }
    return command === 'start' ? await runStart(args) : await runClientCommand(command, args);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`liveswap: ${error.message}\n`);
      return EXIT.usage;
    }
    if (error instanceof LiveswapClientError || error instanceof LiveswapError) {
      process.stderr.write(`liveswap: ${error.message}\n`);
      return error instanceof LiveswapClientError && error.message.startsWith('no master at')
        ? EXIT.unreachable
        : EXIT.failed;
    }
    process.stderr.write(`liveswap: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
    return EXIT.failed;
  }
}
