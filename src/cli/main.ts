/**
 * The liveswap command line. `-s` runs a master in the foreground; every
 * other command is a gRPC client of a running master (src/client).
 *
 * Exit codes: 0 success, 1 the operation failed, 2 bad usage, 3 no master
 * reachable, 4 the master refused the token. Failures print one line on stderr, never a stack trace.
 */
import { status } from '@grpc/grpc-js';
import path from 'node:path';
import { connect, LiveswapClientError, type LiveswapClient } from '../client/index.js';
import type { ControlEndpoint, ControlSecurity } from '../common/endpoint.js';
import type { ConnectOptions } from '../client/index.js';
import {
  BroadcastResponse,
  DieResponse,
  GetStatusResponse,
  KillResponse,
  ReadyMode,
  UpgradeResponse,
} from '../gen/liveswap/v1/liveswap.js';
import { DEFAULTS } from '../common/defaults.js';
import { LiveswapError } from '../common/errors.js';
import { runMaster } from '../run.js';
import { bare, checkArgs, parser, UsageError, type Args, type Command } from './args.js';
import { describeTransition, statusText, watchItemJson, watchItemText } from './format.js';
import { watchOnTerminal } from './watch-view.js';

const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, unauthenticated: 4 } as const;

/** How long -u/-k wait for the last progress lines after the reply. */
const PROGRESS_TAIL_MAX_MS = 2000;
/**
 * How long -u/-k hold progress lines back. A call the master refuses before
 * running it (another operation in progress, a bad target) is answered
 * within a round trip; the transitions seen meanwhile belong to someone
 * else's operation and must not be printed as ours.
 */
const PROGRESS_HOLD_MS = 300;
/** Refusals that mean the operation never ran. */
const NEVER_RAN = new Set<number>([status.ABORTED, status.INVALID_ARGUMENT, status.UNAUTHENTICATED, status.PERMISSION_DENIED]);



function absolute(file: string): string {
  return path.resolve(process.cwd(), file);
}

/** The control endpoint the arguments name: where -s listens and where every other command connects. */
function controlEndpoint(args: Args): ControlEndpoint {
  return args.socket !== undefined
    ? { socket: args.socket }
    : { address: bare(args.address ?? DEFAULTS.address), port: args.port ?? DEFAULTS.port };
}

/** The master's protection of its TCP control: TLS, --insecure, where its token file goes. */
function masterSecurity(args: Args): ControlSecurity {
  return {
    ...(args['tls-cert'] !== undefined && {
      tls: { cert: absolute(args['tls-cert']), key: absolute(args['tls-key']!), ...(args['tls-ca'] !== undefined && { ca: absolute(args['tls-ca']) }) },
    }),
    ...(args.insecure && { insecure: true }),
    ...(args['state-dir'] !== undefined && { stateDir: absolute(args['state-dir']) }),
  };
}

/** How a client command reaches the master: endpoint, token, TLS. */
function clientOptions(args: Args): ConnectOptions {
  const useTls = Boolean(args.tls || args['tls-ca'] || args['tls-cert'] || args['tls-server-name']);
  return {
    ...controlEndpoint(args),
    ...(args.token !== undefined && { token: args.token }),
    ...(args['state-dir'] !== undefined && { stateDir: absolute(args['state-dir']) }),
    ...(useTls && {
      tls: {
        ...(args['tls-ca'] !== undefined && { ca: absolute(args['tls-ca']) }),
        ...(args['tls-cert'] !== undefined && { cert: absolute(args['tls-cert']), key: absolute(args['tls-key']!) }),
        ...(args['tls-server-name'] !== undefined && { serverName: args['tls-server-name'] }),
      },
    }),
  };
}

function readyModeOf(args: Args): ReadyMode {
  switch (args['ready-mode']) {
    case 'listening':
      return ReadyMode.READY_MODE_LISTENING;
    case 'first-listen':
      return ReadyMode.READY_MODE_FIRST_LISTEN;
    case 'message':
      return ReadyMode.READY_MODE_MESSAGE;
    default:
      return ReadyMode.READY_MODE_UNSPECIFIED;
  }
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function runStart(args: Args): Promise<number> {
  const target = args.start ? absolute(args.start) : undefined;
  const running = await runMaster({
    ...(target && { target }),
    control: controlEndpoint(args),
    security: masterSecurity(args),
    forks: args.forks ?? DEFAULTS.forks,
    ...(args['pre-upgrade'] !== undefined && { preUpgrade: absolute(args['pre-upgrade']) }),
    ...(args['ready-timeout'] !== undefined && { readyTimeoutMs: args['ready-timeout'] }),
    ...(args['drain-timeout'] !== undefined && { drainTimeoutMs: args['drain-timeout'] }),
    ...(args['hook-timeout'] !== undefined && { hookTimeoutMs: args['hook-timeout'] }),
    ...(args['max-surge'] !== undefined && { maxSurge: args['max-surge'] }),
    ...(args.spares !== undefined && { spares: args.spares }),
    ...(args.cutover !== undefined && { cutover: args.cutover }),
    ...(args['stable-ms'] !== undefined && { stableMs: args['stable-ms'] }),
    ...(args['ready-mode'] !== undefined && { readyMode: args['ready-mode'] }),
    log: { format: args['log-format'] ?? 'text' },
    ...(args['metrics-port'] !== undefined && {
      metrics: { address: bare(args['metrics-address'] ?? DEFAULTS.address), port: args['metrics-port'] },
    }),
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
  let held: string[] | undefined = [];
  const release = () => {
    for (const line of held ?? []) print(line);
    held = undefined;
  };
  const holding = setTimeout(release, PROGRESS_HOLD_MS);
  const printing = (async () => {
    for await (const item of events) {
      if (item.event?.$case !== 'transition') continue;
      lastSeen = item.event.transition.sequence;
      const line = `  ${describeTransition(item.event.transition)}`;
      if (held) held.push(line);
      else print(line);
    }
  })().catch(() => {});
  try {
    return await operation();
  } catch (error) {
    if (held && error instanceof LiveswapClientError && NEVER_RAN.has(error.code)) held = undefined;
    throw error;
  } finally {
    clearTimeout(holding);
    // Every transition the operation caused happened before its reply, but the
    // stream may deliver the last ones just after it: read up to the master's
    // current sequence number (bounded, in case the master went away).
    const upTo = (await client.status().catch(() => undefined))?.sequence ?? lastSeen;
    const deadline = Date.now() + PROGRESS_TAIL_MAX_MS;
    while (lastSeen < upTo && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    abort.abort();
    await printing;
    release();
  }
}

/**
 * --watch: on a terminal, the worker table redrawn in place; otherwise one
 * line per event (--json: one JSON object per line), written as it comes so
 * it pipes. Ctrl-C (or SIGTERM) and a reader that went away (`| head -1`,
 * EPIPE) end it quietly with 0; so does a master that stopped, with one line
 * on stderr. A master that vanished is an error (the stream fails).
 */
async function runWatch(client: LiveswapClient, json: boolean): Promise<number> {
  const abort = new AbortController();
  const stop = () => {
    // A second Ctrl-C while the first is being handled: leave now (the terminal view restores the cursor on exit).
    if (abort.signal.aborted) process.exit(130);
    abort.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  let outputGone = false;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (!outputGone && error.code !== 'EPIPE') process.stderr.write(`liveswap: cannot write the output: ${error.message}\n`);
    outputGone = true;
    abort.abort();
  });
  const events = client.watch({ signal: abort.signal });
  try {
    if (!json && process.stdout.isTTY) {
      await watchOnTerminal(events, process.stdout, client.endpoint);
    } else {
      for await (const item of events) {
        if (outputGone) break;
        print(json ? watchItemJson(item) : watchItemText(item));
      }
    }
  } catch (error) {
    // Killed, crashed, or the network between us broke: the stream dies without an end.
    if (error instanceof LiveswapClientError && error.code === status.UNAVAILABLE && !/^no master at/.test(error.message)) {
      throw new LiveswapClientError(error.code, `lost the master at ${client.endpoint}: ${error.message.replace(/^./, (c) => c.toLowerCase())}`);
    }
    throw error;
  }
  if (!abort.signal.aborted) process.stderr.write('liveswap: the master ended the stream (it stopped)\n');
  return EXIT.ok;
}

async function runClientCommand(command: Command, args: Args): Promise<number> {
  const client = connect(clientOptions(args));
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
      case 'watch':
        return await runWatch(client, json);
      case 'start':
        throw new Error('unreachable');
    }
  } finally {
    client.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  // grpc-js names the TLS server by the address it connects to, and Node warns
  // about an IP address there (DEP0123); the CLI keeps stderr to one line.
  process.noDeprecation = true;
  let args: Args;
  try {
    args = await parser(argv).parseAsync();
  } catch (error) {
    process.stderr.write(`liveswap: ${(error as Error).message} (see liveswap --help)\n`);
    return EXIT.usage;
  }
  if (args.help) return EXIT.ok;
  try {
    const command = checkArgs(args);
    return command === 'start' ? await runStart(args) : await runClientCommand(command, args);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`liveswap: ${error.message}\n`);
      return EXIT.usage;
    }
    if (error instanceof LiveswapClientError || error instanceof LiveswapError) {
      process.stderr.write(`liveswap: ${error.message}\n`);
      if (args.json && error instanceof LiveswapClientError) {
        // Machines get the whole story, the failing worker's stderr included.
        print(JSON.stringify({ error: { code: error.codeName, message: error.message, stderrTail: error.stderrTail } }));
      }
      if (error instanceof LiveswapClientError && error.code === status.UNAUTHENTICATED) return EXIT.unauthenticated;
      return error instanceof LiveswapClientError && error.message.startsWith('no master at')
        ? EXIT.unreachable
        : EXIT.failed;
    }
    process.stderr.write(`liveswap: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
    return EXIT.failed;
  }
}
