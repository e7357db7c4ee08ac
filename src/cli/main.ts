/**
 * The liveswap command line. `-s` runs a master in the foreground
 * (start.ts, loaded for -s alone); every other command is a gRPC client of a
 * running master (src/client), and loads nothing of the master.
 *
 * Exit codes: see report.ts. Failures print one line on stderr, never a stack trace.
 */
import { Status as status } from '../common/status.js';
import { connect, LiveswapClientError, type LiveswapClient } from '../client/index.js';
import { BroadcastResponse, DieResponse, GetStatusResponse, KillResponse, UpgradeMasterResponse, UpgradeResponse } from '../gen/liveswap/v1/liveswap.js';
import { toProtoReadyMode } from '../common/ready-mode.js';
import { fromHere } from '../options.js';
import { checkArgs, parser, type Args, type Command } from './args.js';
import { clientOptionsOf } from './flags.js';
import { describeTransition, statusText, watchItemJson, watchItemText } from './format.js';
import { EXIT, print, report, UsageError } from './report.js';
import { watchOnTerminal } from './watch-view.js';

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

/** Runs an operation while printing the worker transitions it causes. */
async function withProgress<T>(client: LiveswapClient, quiet: boolean, operation: () => Promise<T>): Promise<T> {
  if (quiet) return operation();
  const abort = new AbortController();
  const events = client.watch({ signal: abort.signal });
  // The watch goes out first and the operation right behind it, on the same
  // connection, without waiting a round trip for the snapshot (that wait was
  // a tenth of a deploy's time from the shell): the master takes the calls in
  // the order they come, so the snapshot still precedes every transition.
  const snapshot = events.next();
  const running = operation();
  running.catch(() => {}); // Handled below; not an unhandled rejection meanwhile.
  const first = await snapshot.catch(() => ({ done: true, value: undefined }) as const);
  if (first.done || first.value.event?.$case !== 'snapshot') {
    abort.abort();
    return running;
  }
  let lastSeen = first.value.event.snapshot.sequence;
  // Set once the reply is in: the sequence number to read up to, and who waits for it.
  let tail: { upTo: number; reached: () => void } | undefined;
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
      if (tail && lastSeen >= tail.upTo) tail.reached();
    }
  })().catch(() => {});
  try {
    return await running;
  } catch (error) {
    if (held && error instanceof LiveswapClientError && NEVER_RAN.has(error.code)) held = undefined;
    throw error;
  } finally {
    clearTimeout(holding);
    // Every transition the operation caused happened before its reply, but the
    // stream may deliver the last ones just after it: read up to the master's
    // current sequence number, and no longer (bounded, in case the master went away).
    const upTo = (await client.status().catch(() => undefined))?.sequence ?? lastSeen;
    if (lastSeen < upTo) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (tail = { upTo, reached: resolve })),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, PROGRESS_TAIL_MAX_MS))),
        printing, // The stream ended.
      ]);
      clearTimeout(timer);
    }
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
 * on stderr. A master that vanished is an error (the stream fails). A master
 * replaced by --upgrade-master is followed: its successor's snapshot comes
 * next (in line mode after one line on stderr).
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
  const onTerminal = !json && process.stdout.isTTY;
  const onMasterReplaced = () => {
    if (!onTerminal) process.stderr.write('liveswap: the master was replaced (upgrade-master); following its successor\n');
  };
  const events = client.watch({ signal: abort.signal, followMaster: true, onMasterReplaced });
  try {
    if (onTerminal) {
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
  if (args.hosts !== undefined) {
    const { runRollout, runFleetStatus } = await import('./fleet.js');
    return command === 'upgrade' ? runRollout(args) : runFleetStatus(args);
  }
  const client = connect(clientOptionsOf(args));
  const json = Boolean(args.json);
  try {
    switch (command) {
      case 'upgrade': {
        const result = await withProgress(client, json, () =>
          client.upgrade({
            target: fromHere(args.upgrade!),
            readyMode: toProtoReadyMode(args['ready-mode']),
            readyTimeoutMs: args['ready-timeout'] ?? 0,
            drainTimeoutMs: args['drain-timeout'] ?? 0,
            node: args.node ? fromHere(args.node) : '',
          }),
        );
        if (json) print(JSON.stringify(UpgradeResponse.toJSON(result)));
        else {
          const killed = result.killedAtDrainTimeout ? `; ${result.killedAtDrainTimeout} killed at the drain timeout` : '';
          print(`upgraded to generation ${result.generation} (${result.target}) in ${result.durationMs} ms: ${result.workers.length} worker(s) ready${killed}`);
        }
        return EXIT.ok;
      }
      case 'upgrade-master': {
        const result = await client.upgradeMaster({
          node: args.node ? fromHere(args.node) : '',
          readyTimeoutMs: args['ready-timeout'] ?? 0,
          drainTimeoutMs: args['drain-timeout'] ?? 0,
        });
        if (json) print(JSON.stringify(UpgradeMasterResponse.toJSON(result)));
        else print(`master upgraded in ${result.durationMs} ms: pid ${result.oldMasterPid} → pid ${result.newMasterPid} (Node ${result.nodeVersion}); the old master is draining its workers`);
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

/** `--token -` as `--token=-`: yargs reads a lone `-` as an argument of its own, not as the option's value. */
function stdinTokenJoined(argv: string[]): string[] {
  return argv.flatMap((arg, i) => (arg === '--token' && argv[i + 1] === '-' ? ['--token=-'] : arg === '-' && argv[i - 1] === '--token' ? [] : [arg]));
}

/**
 * How -s loads the master (start.ts). bin/liveswap.cjs passes its own import:
 * on Node 20 the bundle is compiled through node:vm for its code cache
 * (compile-cache.ts), where an import() of its own needs an experimental flag.
 */
export type LoadStart = () => Promise<typeof import('./start.js')>;

export async function main(argv: string[], loadStart: LoadStart = () => import('./start.js')): Promise<number> {
  // Node warns about an IP address as a TLS server name (DEP0123); the CLI keeps stderr to one line.
  process.noDeprecation = true;
  let args: Args;
  try {
    args = await parser(stdinTokenJoined(argv)).parseAsync();
  } catch (error) {
    process.stderr.write(`liveswap: ${(error as Error).message} (see liveswap --help)\n`);
    return EXIT.usage;
  }
  if (args.help) return EXIT.ok;
  try {
    const command = checkArgs(args);
    if (command !== 'start') return await runClientCommand(command, args);
    // start.js reports its own failures: see there.
    const { runStart } = await loadStart();
    return await runStart(args);
  } catch (error) {
    return report(error, args);
  }
}
