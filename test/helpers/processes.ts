/**
 * Real processes for tests: a liveswap master run through the real CLI, and
 * one-shot CLI commands. Every process started here is tracked; stop() ends
 * the master and checks that it and every worker it ever logged are gone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { connect, type ConnectOptions, type LiveswapClient } from '../../src/client/index.js';
import { CLI, tempDir } from './paths.js';
import { expectGone, GiveUp, isAlive, waitFor, withDeadline } from './wait.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], options: RunOptions = {}): Promise<CliResult> {
  return runNode([CLI, ...args], { ...options, what: `liveswap ${args.join(' ')}` });
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Written to the process's stdin, which is then closed (default: no stdin). */
  input?: string;
}

/** Runs this Node with `args` (a script and its arguments, or `-e CODE`) to its end. */
export function runNode(args: string[], { cwd = process.cwd(), env = {}, timeoutMs = 30_000, input, what = `node ${args.join(' ')}` }: RunOptions & { what?: string } = {}): Promise<CliResult> {
  return withDeadline(
    what,
    new Promise<CliResult>((resolve, reject) => {
      const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] as const });
      child.stdin?.end(input);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (chunk) => (stdout += chunk));
      child.stderr!.on('data', (chunk) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    }),
    timeoutMs,
  );
}

export interface CliProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code and signal once the CLI exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * A long-running CLI command (e.g. --watch) as a real process. The caller's
 * test kills it if it is still running at the end and checks that it is gone.
 * With `viaShebang` the CLI file is executed itself, as an installed
 * `liveswap` is: its `#!/usr/bin/env node` picks the first node on PATH.
 */
export function spawnCli(t: { after(fn: () => Promise<void>): void }, args: string[], { viaShebang = false } = {}): CliProcess {
  const [command, argv] = viaShebang ? [CLI, args] : [process.execPath, [CLI, ...args]];
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  t.after(async () => {
    if (isAlive(child.pid!)) child.kill('SIGKILL');
    await expectGone([child.pid!]);
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

export interface MasterProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The control socket path ('' with `tcp`). */
  readonly socket: string;
  /** The control port (0 on a unix socket). */
  readonly port: number;
  /** CLI arguments that reach this master (`--socket PATH`, or `-p PORT` with `tcp`). */
  readonly via: string[];
  readonly client: LiveswapClient;
  stdout(): string;
  stderr(): string;
  /** Every worker pid the master has logged so far. */
  workerPids(): number[];
  /** Waits until the master's stdout matches. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code once the master exits. */
  exited: Promise<number | null>;
  /** Die (graceful), or SIGKILL if it does not answer; then checks every pid is gone. */
  stop(): Promise<void>;
}

export interface StartMasterOptions {
  forks?: number;
  env?: Record<string, string>;
  /** Extra CLI arguments (e.g. --ready-timeout 1000). */
  args?: string[];
  cwd?: string;
  /** Wait for the pool to be ready (default true). */
  waitReady?: boolean;
  /** The control socket path (default: a fresh one in a temporary directory). */
  socket?: string;
  /** Control over TCP on a free port instead of a unix socket. */
  tcp?: boolean;
  /** With `tcp`: the control address (default 127.0.0.1). `client` dials the default address all the same. */
  address?: string;
  /** Extra options of `client` (TLS, token) with `tcp`. */
  clientOptions?: ConnectOptions;
  /** Start the master in a session of its own, with no controlling terminal (as systemd does). */
  noTerminal?: boolean;
  /** Another build's bin/liveswap.js (the security bench measures the release before a fix with it). */
  cli?: string;
}

export async function startMaster(target: string | undefined, options: StartMasterOptions = {}): Promise<MasterProcess> {
  const socket = options.tcp ? '' : (options.socket ?? path.join(tempDir(), 'control.sock'));
  const control = options.tcp ? ['-a', options.address ?? '127.0.0.1', '-p', '0'] : ['--socket', socket];
  const args = [options.cli ?? CLI, '-s', ...(target ? [target] : []), ...control, '-f', String(options.forks ?? 2), ...(options.args ?? [])];
  const child = spawn(process.execPath, args, {
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.noTerminal ?? false,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let hasExited = false;
  void exited.then(() => (hasExited = true));

  const workerPids = () => [...stderr.matchAll(/worker \d+ \(pid (\d+),/g)].map((m) => Number(m[1]));
  let port = 0;
  let client = options.tcp ? undefined : connect({ socket });
  const master: MasterProcess = {
    child,
    pid: child.pid!,
    socket,
    get port() {
      return port;
    },
    get via() {
      return options.tcp ? ['-p', String(port)] : ['--socket', socket];
    },
    get client() {
      return client!;
    },
    stdout: () => stdout,
    stderr: () => stderr,
    workerPids: () => [...new Set(workerPids())],
    waitForStdout: (pattern, timeoutMs = 10_000) =>
      waitFor(`master stdout to match ${pattern}`, () => stdout.match(pattern) ?? undefined, { timeoutMs }),
    exited,
    async stop() {
      if (!hasExited) {
        await client?.die({ drainTimeoutMs: 5000 }).catch(() => {});
        await withDeadline('master exit after Die', exited, 10_000).catch(() => child.kill('SIGKILL'));
      }
      client?.close();
      await exited;
      const pids = [child.pid!, ...master.workerPids()];
      // Safety net: whatever is left is killed, but the test still fails.
      await expectGone(pids, 5000).catch((error: Error) => {
        for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
        throw error;
      });
    },
  };

  const waitReady = options.waitReady ?? true;
  await waitFor(
    'the master to come up',
    () => {
      if (hasExited) throw new GiveUp('master exited early');
      return waitReady ? /master pid \d+ up/.test(stderr) : /control service listening/.test(stderr);
    },
    { timeoutMs: 20_000 },
  ).catch(async (error: Error) => {
    if (!hasExited) child.kill('SIGKILL');
    throw new Error(`${error.message}\n--- master stderr ---\n${stderr}`);
  });
  if (options.tcp) {
    port = Number(/control service listening on \S+:(\d+) /.exec(stderr)![1]);
    client = connect({ port, ...options.clientOptions });
  }
  return master;
}
