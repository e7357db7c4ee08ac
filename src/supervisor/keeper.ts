/**
 * The keeper: the process a supervisor started (systemd's main pid, a
 * container's PID 1, the shell's job), once its master has been replaced.
 *
 * The first master is that process itself. Its first UpgradeMaster starts the
 * successor as its child, with the listening sockets as inherited
 * descriptors; once the successor serves, the first master drains its
 * workers, closes its control service and stays on as this keeper: it holds
 * no socket and reads nothing from the network, and it
 *   - starts every later successor (a child master asks over IPC, sending
 *     its sockets as handles), so every master is its child and the
 *     supervisor's pid never changes;
 *   - passes SIGINT, SIGTERM and SIGHUP on to the current master (a closed
 *     terminal becomes SIGTERM, as it stops a master);
 *   - exits with the current master's exit status.
 * Successors run in a session of their own (detached), so a terminal's
 * Ctrl-C reaches them once, through the keeper.
 *
 * A successor start has four outcomes, as tableflip's: it says it is ready;
 * it says it failed; it exits; or the timeout passes (then it is killed).
 * Only the first one changes anything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import os from 'node:os';
import {
  CONTROL_KEY,
  isHandoverMessage,
  SUCCESSOR_ENV,
  type BeginMessage,
  type FailedMessage,
  type ReadyMessage,
  type Succession,
} from '../common/handover.js';
import type { Logger } from '../common/logger.js';
import type { ListenHandle } from './listeners.js';
import { forEachLine, TailBuffer } from './output.js';
import { hasControllingTerminal } from './terminal.js';

/** Lines of a successor's stderr kept for the reason of a failed start. */
const STDERR_TAIL_LINES = 20;

export type SuccessorOutcome = ReadyMessage | FailedMessage;

export class Keeper extends EventEmitter<{ 'master-exit': [code: number] }> {
  /** The current master, when it is a child (after the first handover). */
  private current: ChildProcess | undefined;
  private keeping = false;

  constructor(private readonly log: Logger) {
    super();
  }

  /** This process no longer runs a master: pass signals on, and exit with the master's status. */
  keep(): void {
    if (this.keeping) return;
    this.keeping = true;
    const startedInTerminal = hasControllingTerminal();
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => this.signalMaster(signal));
    process.on('SIGHUP', () => {
      const terminalClosed = startedInTerminal && !hasControllingTerminal();
      this.signalMaster(terminalClosed ? 'SIGTERM' : 'SIGHUP');
    });
    this.log.info(`keeper pid ${process.pid}: master pid ${this.current?.pid} serves; this process stays for the supervisor`);
  }

  private signalMaster(signal: NodeJS.Signals): void {
    if (this.current?.pid) process.kill(this.current.pid, signal);
  }

  /**
   * Starts a successor master on these descriptors (numbers in this
   * process), and resolves with how its start ended. On anything but ready
   * it is gone (killed with everything it forked) before this resolves.
   */
  startSuccessor(succession: Succession, listeners: readonly { key: string; fd: number }[], controlFd: number): Promise<SuccessorOutcome> {
    const stdio = ['ignore', 'inherit', 'pipe', 'ipc', ...listeners.map((l) => l.fd), controlFd] as const;
    const args = [process.argv[1]!, ...process.argv.slice(2)];
    let child: ChildProcess;
    try {
      child = spawn(succession.node, args, {
        cwd: process.cwd(),
        env: { ...process.env, [SUCCESSOR_ENV]: '1' },
        stdio: [...stdio],
        detached: true,
      });
    } catch (error) {
      return Promise.resolve(failed(`cannot start ${succession.node}: ${(error as Error).message}`, []));
    }
    const tail = new TailBuffer(STDERR_TAIL_LINES);
    forEachLine(child.stderr!, (line) => {
      tail.push(line);
      process.stderr.write(`${line}\n`);
    });
    const begin: BeginMessage = {
      liveswapHandover: 'begin',
      succession,
      listeners: listeners.map((l, i) => ({ key: l.key, fd: 4 + i })),
      controlFd: 4 + listeners.length,
    };
    return new Promise<SuccessorOutcome>((resolve) => {
      let settled = false;
      const settle = (outcome: SuccessorOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (outcome.liveswapHandover === 'ready') {
          this.adopt(child);
          resolve(outcome);
          return;
        }
        const withTail = { ...outcome, stderrTail: outcome.stderrTail.length ? outcome.stderrTail : tail.get() };
        if (child.exitCode !== null || child.signalCode !== null) return resolve(withTail);
        killGroup(child);
        child.once('exit', () => resolve({ ...withTail, stderrTail: withTail.stderrTail.length ? withTail.stderrTail : tail.get() }));
      };
      const timer = setTimeout(
        () => settle(failed(`the successor (pid ${child.pid}) was not ready within ${succession.timeoutMs} ms; stopped it`, [])),
        succession.timeoutMs,
      );
      child.on('error', (error) => settle(failed(`cannot start ${succession.node}: ${error.message}`, [])));
      child.on('message', (message) => {
        if (isHandoverMessage(message) && (message.liveswapHandover === 'ready' || message.liveswapHandover === 'failed')) settle(message);
      });
      child.once('exit', (code, signal) => {
        // Its stderr may still hold the why: let the pipe end first.
        setImmediate(() =>
          settle(failed(`the successor (pid ${child.pid}, ${succession.node}) exited with ${signal ?? `code ${code}`} before it was ready`, tail.get())),
        );
      });
      // A successor that cannot take the message (EPIPE) is dying: its exit says why, or the timeout does.
      child.send(begin, () => {});
    });
  }

  /** The successor is the master now: serve its requests for the next one, and follow its exit. */
  private adopt(child: ChildProcess): void {
    this.current = child;
    const handles: { key: string; handle: ListenHandle }[] = [];
    child.on('message', (message, handle) => {
      if (!isHandoverMessage(message)) return;
      if (message.liveswapHandover === 'socket' && handle) handles.push({ key: message.key, handle: handle as unknown as ListenHandle });
      if (message.liveswapHandover === 'spawn') {
        const sockets = handles.splice(0);
        const control = sockets.find((s) => s.key === CONTROL_KEY);
        const listeners = sockets.filter((s) => s.key !== CONTROL_KEY).map((s) => ({ key: s.key, fd: s.handle.fd }));
        const answer = control
          ? this.startSuccessor(message.succession, listeners, control.handle.fd)
          : Promise.resolve(failed('the master sent no control listener', []));
        void answer.then((outcome) => {
          // The successor has its own copies now (or there is none): ours go.
          for (const s of sockets) s.handle.close();
          if (child.connected) child.send(outcome);
        });
      }
    });
    child.once('exit', (code, signal) => {
      if (this.current !== child) return; // Replaced: it retired.
      const status = code ?? 128 + (signal ? signalNumber(signal) : 0);
      this.log.info(`master pid ${child.pid} exited (${signal ?? `code ${code}`}); the keeper exits too`);
      this.emit('master-exit', status);
    });
  }
}

function failed(reason: string, stderrTail: string[]): FailedMessage {
  return { liveswapHandover: 'failed', reason, stderrTail };
}

/** The successor and everything it forked (it leads its own process group). */
function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

function signalNumber(signal: NodeJS.Signals): number {
  return os.constants.signals[signal] ?? 0;
}
