/**
 * The four servers the peers bench deploys under load, each started and
 * deployed the way its users do it, with the same app and 2 workers:
 *   liveswap   `liveswap -s v1.js`, then the real CLI `liveswap -u v2.js`
 *   plain      plain-primary.ts (a hand-rolled node:cluster primary), `kill -HUP`
 *   PM2        `pm2 start current/app.js -i 2` (cluster mode), `pm2 reload`
 *   naught     `naught start current/app.js`, `naught deploy`
 * For the last three the code changes on disk: releases/v1 and releases/v2,
 * and a `current` symlink that the deploy repoints (atomically: a new link
 * renamed over the old one) before it runs the command.
 *
 * PM2 and naught run as daemons (their own session and process group): PM2
 * with PM2_HOME in the peer's temporary folder. stop() ends them with their
 * own command, then SIGKILLs their process group if anything of it is left;
 * killNow() does the latter at once (Ctrl-C, a crash of the bench).
 */
import { spawn, fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { childPids } from '../../test/helpers/proc-tree.js';
import { CLI, fixture, ROOT } from '../../test/helpers/paths.js';
import type { MasterProcess } from '../../test/helpers/processes.js';
import { expectGone, isAlive, waitFor, withDeadline } from '../../test/helpers/wait.js';
import { liveswapMaster } from '../lib/servers.js';

/** Where the peers' own files are: package.json, node_modules, app.cjs, naught-shim.cjs (not compiled). */
export const PEERS_DIR = path.join(ROOT, 'bench', 'peers');
const APP = path.join(PEERS_DIR, 'app.cjs');
const NAUGHT_SHIM = path.join(PEERS_DIR, 'naught-shim.cjs');
const PM2_BIN = path.join(PEERS_DIR, 'node_modules', 'pm2', 'bin', 'pm2');
const NAUGHT_BIN = path.join(PEERS_DIR, 'node_modules', 'naught', 'lib', 'main.js');
const PLAIN_PRIMARY = fileURLToPath(new URL('./plain-primary.js', import.meta.url));

/** How long a deploy command may take before the bench stops waiting for it. */
export const DEPLOY_DEADLINE_MS = 15_000;
const START_DEADLINE_MS = 30_000;
const STOP_DEADLINE_MS = 20_000;

export interface Deploy {
  /** The command said it succeeded (exit code 0, or the primary's 'restarted'). */
  ok: boolean;
  /** It did not end within DEPLOY_DEADLINE_MS (the bench went on without it). */
  timedOut: boolean;
  output: string;
}

export interface Peer {
  readonly name: string;
  /** The deploy as its users type it, for the table. */
  readonly command: string;
  start(port: number): Promise<void>;
  /** What the app's workers printed so far (the slow requests announce themselves there). */
  output(): string;
  deploy(): Promise<Deploy>;
  stop(): Promise<void>;
  /** Synchronous last resort: SIGKILL every process this peer started. */
  killNow(): void;
}

/** A process this module spawned and waits for: its output, its end, and a way to kill it. */
interface Running {
  child: ChildProcess;
  output(): string;
  ended: Promise<number | null>;
}

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Running {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const ended = new Promise<number | null>((resolve) => {
    child.once('error', (error) => {
      output += String(error);
      resolve(null);
    });
    child.once('close', (code) => resolve(code));
  });
  return { child, output: () => output, ended };
}

/** Runs to its end (or SIGKILLed at the deadline): for the start and stop commands. */
async function runToEnd(what: string, command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv }, deadlineMs: number): Promise<string> {
  const running = run(command, args, options);
  const code = await withDeadline(what, running.ended, deadlineMs).catch((error: Error) => {
    running.child.kill('SIGKILL');
    throw new Error(`${error.message}\n${running.output()}`);
  });
  if (code !== 0) throw new Error(`${what} failed (exit ${code}):\n${running.output()}`);
  return running.output();
}

/** A deploy command: waited for up to DEPLOY_DEADLINE_MS; past that it keeps running, killed by stop(). */
async function deployCommand(running: Running, alsoKill: Set<ChildProcess>): Promise<Deploy> {
  alsoKill.add(running.child);
  const code = await withDeadline('the deploy command', running.ended, DEPLOY_DEADLINE_MS).catch(() => 'timeout' as const);
  if (code === 'timeout') return { ok: false, timedOut: true, output: running.output() };
  alsoKill.delete(running.child);
  return { ok: code === 0, timedOut: false, output: running.output() };
}

/** A log or pid file's text, '' while it does not exist. */
function readIfThere(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}

/** SIGKILLs a daemon's process group: the daemon and every process it started (they stay in its group). */
function killGroup(pgid: number | undefined): void {
  if (!pgid) return;
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error; // ESRCH: nothing of it is left
  }
}

/**
 * A daemon's own stop command (`pm2 kill`, `naught stop`), given STOP_DEADLINE_MS; then whatever
 * is left of its process group goes, and every pid in `pids` must be gone.
 */
async function stopDaemon(what: string, stop: Running, daemon: number, pids: number[]): Promise<void> {
  await withDeadline(what, stop.ended, STOP_DEADLINE_MS).catch(() => stop.child.kill('SIGKILL'));
  await expectGone(pids, 5000).catch(() => killGroup(daemon));
  await expectGone(pids, STOP_DEADLINE_MS);
}

/** The pid a daemon wrote to its pid file (PM2's and naught's daemons lead their own process group). */
function pidFrom(file: string): number | undefined {
  const pid = Number(readIfThere(file).trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * releases/v1/app.js and releases/v2/app.js (one line each: app.cjs with the
 * version and the tool's contract), and `current` → releases/v1.
 */
function releases(dir: string, contract: 'plain' | 'pm2' | 'naught') {
  for (const version of ['v1', 'v2']) {
    fs.mkdirSync(path.join(dir, 'releases', version), { recursive: true });
    fs.writeFileSync(path.join(dir, 'releases', version, 'app.js'), `require(${JSON.stringify(APP)})(${JSON.stringify(version)}, ${JSON.stringify(contract)});\n`);
  }
  fs.symlinkSync(path.join('releases', 'v1'), path.join(dir, 'current'));
  return {
    app: path.join(dir, 'current', 'app.js'),
    /** Points `current` at the release, as a deploy script does: a new link renamed over the old one. */
    switchTo(version: string) {
      const next = path.join(dir, 'current.next');
      fs.rmSync(next, { force: true });
      fs.symlinkSync(path.join('releases', version), next);
      fs.renameSync(next, path.join(dir, 'current'));
    },
  };
}

// --- liveswap -------------------------------------------------------------------

export function liveswap(): Peer {
  let master: MasterProcess | undefined;
  const commands = new Set<ChildProcess>();
  return {
    name: 'liveswap',
    command: 'liveswap -u v2.js',
    async start(port) {
      master = await liveswapMaster(2, port, 'v1');
    },
    output: () => master?.stdout() ?? '',
    deploy: () => deployCommand(run(process.execPath, [CLI, '-u', fixture('v2.js'), ...master!.via]), commands),
    async stop() {
      for (const child of commands) child.kill('SIGKILL');
      await master?.stop();
      master = undefined;
    },
    killNow() {
      for (const child of commands) child.kill('SIGKILL');
      if (!master) return;
      for (const pid of [master.pid, ...master.workerPids()]) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    },
  };
}

// --- plain node:cluster -------------------------------------------------------------

export function plainCluster(dir: string): Peer {
  let primary: ChildProcess | undefined;
  let stdout = '';
  let workers: number[] = [];
  const release = releases(dir, 'plain');
  return {
    name: 'node:cluster, hand-rolled',
    command: 'ln -sfn releases/v2 current; kill -HUP <primary>',
    async start(port) {
      primary = fork(PLAIN_PRIMARY, [], {
        env: { ...process.env, FORKS: '2', APP: release.app, APP_PORT: String(port) },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      });
      primary.stdout!.on('data', (chunk) => (stdout += chunk));
      primary.stderr!.on('data', (chunk) => (stdout += chunk));
      const exited = once(primary, 'exit').then(() => {
        throw new Error(`the plain primary exited before it was ready:\n${stdout}`);
      });
      await withDeadline('the plain primary to be ready', Promise.race([once(primary, 'message'), exited]), START_DEADLINE_MS);
      workers = childPids(primary.pid!);
    },
    output: () => stdout,
    async deploy() {
      const child = primary!;
      const reply = new Promise<{ restarted?: boolean; reason?: string }>((resolve) => child.once('message', resolve));
      release.switchTo('v2');
      const kill = run('kill', ['-HUP', String(child.pid)]);
      const code = await kill.ended;
      if (code !== 0) return { ok: false, timedOut: false, output: kill.output() };
      const answer = await withDeadline('the plain primary to restart its workers', reply, DEPLOY_DEADLINE_MS).catch(() => undefined);
      workers = [...new Set([...workers, ...childPids(child.pid!)])];
      if (!answer) return { ok: false, timedOut: true, output: stdout };
      return { ok: answer.restarted === true, timedOut: false, output: answer.reason ?? '' };
    },
    async stop() {
      if (!primary) return;
      workers = [...new Set([...workers, ...childPids(primary.pid!)])];
      if (primary.exitCode === null && primary.signalCode === null) {
        const exited = once(primary, 'exit');
        primary.kill('SIGTERM');
        await withDeadline('the plain primary to exit', exited, STOP_DEADLINE_MS).catch(() => primary!.kill('SIGKILL'));
      }
      await expectGone([primary.pid!, ...workers], STOP_DEADLINE_MS);
      primary = undefined;
    },
    killNow() {
      if (!primary) return;
      for (const pid of [primary.pid!, ...workers, ...childPids(primary.pid!)]) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    },
  };
}

// --- PM2 ---------------------------------------------------------------------------

export function pm2(dir: string): Peer {
  const release = releases(dir, 'pm2');
  const home = path.join(dir, 'pm2-home');
  const outLog = path.join(dir, 'app-out.log');
  let env: NodeJS.ProcessEnv = {};
  let daemon: number | undefined;
  const commands = new Set<ChildProcess>();
  const pm2Command = (args: string[]) => run(process.execPath, [PM2_BIN, ...args], { cwd: dir, env });
  return {
    name: 'PM2',
    command: 'ln -sfn releases/v2 current; pm2 reload app',
    async start(port) {
      env = { ...process.env, PM2_HOME: home, APP_PORT: String(port) };
      fs.mkdirSync(home, { recursive: true });
      try {
        await runToEnd('pm2 start', process.execPath, [PM2_BIN, 'start', release.app, '-i', '2', '--name', 'app', '-o', outLog, '-e', path.join(dir, 'app-err.log'), '--merge-logs'], { cwd: dir, env }, START_DEADLINE_MS);
      } finally {
        daemon = pidFrom(path.join(home, 'pm2.pid'));
      }
    },
    output: () => readIfThere(outLog),
    deploy() {
      release.switchTo('v2');
      return deployCommand(pm2Command(['reload', 'app']), commands);
    },
    async stop() {
      for (const child of commands) child.kill('SIGKILL');
      daemon ??= pidFrom(path.join(home, 'pm2.pid'));
      if (daemon === undefined) return;
      const pids = [daemon, ...childPids(daemon)];
      // `pm2 kill` stops the daemon and its apps.
      await stopDaemon('pm2 kill', pm2Command(['kill']), daemon, pids);
      daemon = undefined;
    },
    killNow() {
      for (const child of commands) child.kill('SIGKILL');
      killGroup(daemon ?? pidFrom(path.join(home, 'pm2.pid')));
    },
  };
}

// --- naught ------------------------------------------------------------------------

export function naught(dir: string): Peer {
  const release = releases(dir, 'naught');
  const ipc = path.join(dir, 'naught.ipc');
  const pidFile = path.join(dir, 'naught.pid');
  const stdoutLog = path.join(dir, 'stdout.log');
  let env: NodeJS.ProcessEnv = {};
  let daemon: number | undefined;
  const commands = new Set<ChildProcess>();
  return {
    name: 'naught',
    command: 'ln -sfn releases/v2 current; naught deploy',
    async start(port) {
      env = { ...process.env, APP_PORT: String(port) };
      const args = ['start', '--worker-count', '2', '--ipc-file', ipc, '--pid-file', pidFile, '--log', path.join(dir, 'naught.log'), '--stdout', stdoutLog, '--stderr', path.join(dir, 'stderr.log'), release.app];
      try {
        // Through the shim: naught's daemon does not run on Node 20 without it (naught-shim.cjs says why).
        await runToEnd('naught start', process.execPath, [NAUGHT_SHIM, ...args], { cwd: dir, env }, START_DEADLINE_MS);
      } finally {
        daemon = await waitFor('naught.pid', () => pidFrom(pidFile), { timeoutMs: 2000 }).catch(() => undefined);
      }
    },
    output: () => readIfThere(stdoutLog),
    deploy() {
      release.switchTo('v2');
      // naught's own CLI: deploy needs no shim (and sends its environment to the daemon).
      return deployCommand(run(process.execPath, [NAUGHT_BIN, 'deploy', ipc], { cwd: dir, env }), commands);
    },
    async stop() {
      for (const child of commands) child.kill('SIGKILL');
      if (daemon === undefined) return;
      const pids = [daemon, ...childPids(daemon).flatMap((pid) => [pid, ...childPids(pid)])];
      await stopDaemon('naught stop', run(process.execPath, [NAUGHT_BIN, 'stop', '--timeout', '5', ipc], { cwd: dir, env }), daemon, pids);
      daemon = undefined;
    },
    killNow() {
      for (const child of commands) child.kill('SIGKILL');
      killGroup(daemon ?? pidFrom(pidFile));
    },
  };
}
