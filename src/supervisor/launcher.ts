/**
 * The seam between the master's state machine and real processes.
 *
 * The pool only ever talks to a WorkerProcess; ClusterLauncher makes them
 * with node:cluster. Unit tests of the state machine pass a launcher of fake
 * processes; every other test runs real ones.
 */
import cluster, { type Worker as ClusterWorker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { isAddressMessage, isReadyMessage, isSpareMessage, WorkerEnv } from '../common/ipc.js';
import type { ReadyMode } from '../common/config.js';
import { forEachLine } from './output.js';


export interface LaunchSpec {
  target: string;
  generation: number;
  readyMode: ReadyMode;
  /** The Node.js binary the workers run on; undefined: the master's own. */
  execPath?: string;
  /** Its version ("v22.12.0"), shown in status. */
  nodeVersion: string;
}

export interface WorkerProcessEvents {
  /** One of the worker's servers is listening (address as host:port or a path). */
  listening: [address: string];
  /** One of the worker's servers closed. */
  closed: [address: string];
  /** The app sent the explicit ready message. */
  'ready-message': [];
  stdout: [line: string];
  stderr: [line: string];
  /**
   * The process could not be created after all (the OS refused the spawn:
   * EAGAIN, ENOENT…, reported after fork returned). An exit follows at once.
   */
  'fork-failed': [error: Error];
  /** The process is gone and its output has been read to the end. */
  exit: [code: number | null, signal: NodeJS.Signals | null];
}

export interface WorkerProcess extends EventEmitter<WorkerProcessEvents> {
  readonly id: number;
  readonly pid: number;
  /** Sends an IPC message; the callback gets an error if it was not written. */
  send(message: unknown, callback: (error: Error | null) => void): void;
  kill(signal: NodeJS.Signals): void;
}

export interface Launcher {
  /** Throws when the OS refuses to create the process outright (cluster.fork throws ENOMEM…). */
  launch(spec: LaunchSpec): WorkerProcess;
  /** Stop: kill idle spare processes and make no more. */
  close?(): void;
  /** Spare processes ready to become workers now. */
  spares?(): number;
  /** Boot any missing spares now (the master calls it when an operation has ended). */
  prepareSpares?(): void;
}

/** How long to wait for a dead worker's pipes to close before reporting its exit anyway. */
const STDIO_CLOSE_GRACE_MS = 250;

const WORKER_ENTRY = fileURLToPath(new URL('../worker/main.js', import.meta.url));

class ClusterWorkerProcess extends EventEmitter<WorkerProcessEvents> implements WorkerProcess {
  readonly id: number;
  readonly pid: number;

  constructor(private readonly worker: ClusterWorker) {
    super();
    this.id = worker.id;
    this.pid = worker.process.pid ?? 0;
    const child = worker.process;
    let openStreams = 0;
    for (const [stream, event] of [
      [child.stdout, 'stdout'],
      [child.stderr, 'stderr'],
    ] as const) {
      if (!stream) continue;
      openStreams++;
      forEachLine(stream, (line) => this.emit(event, line));
      stream.once('close', () => {
        openStreams--;
        if (openStreams === 0) streamsClosed();
      });
    }
    let exitStatus: [number | null, NodeJS.Signals | null] | undefined;
    let reported = false;
    const report = () => {
      if (reported || !exitStatus) return;
      reported = true;
      this.emit('exit', ...exitStatus);
    };
    const streamsClosed = () => report();
    worker.on('message', (message) => {
      if (isReadyMessage(message)) this.emit('ready-message');
      else if (isAddressMessage(message)) this.emit(message.liveswap, message.address);
    });
    const gone = (code: number | null, signal: NodeJS.Signals | null) => {
      exitStatus = [code, signal];
      if (openStreams === 0) report();
      // A grandchild may hold the pipes open; do not wait for it forever.
      else setTimeout(report, STDIO_CLOSE_GRACE_MS).unref();
    };
    worker.on('error', (error) => {
      // A process that was never created (the spawn failed after fork returned:
      // EAGAIN, ENOENT…) reports this error and never an exit: report both.
      // Any other error is on the IPC channel (EPIPE after the worker died): expected.
      if (child.pid !== undefined || exitStatus) return;
      this.emit('fork-failed', error);
      gone(null, null);
    });
    worker.once('exit', (code, signal) => gone(code, signal as NodeJS.Signals | null));
  }

  send(message: unknown, callback: (error: Error | null) => void): void {
    if (!this.worker.isConnected()) {
      callback(new Error('IPC channel closed'));
      return;
    }
    this.worker.send(message as never, undefined, (error) => callback(error ?? null));
  }

  kill(signal: NodeJS.Signals): void {
    try {
      this.worker.process.kill(signal);
    } catch {
      // Already gone: the exit event reports it.
    }
  }
}

/**
 * cluster.fork on a given Node binary. cluster has no setting for it: its
 * settings take an `execPath` but never pass it on, and the
 * child_process.fork it calls runs `options.execPath || process.execPath`
 * (lib/internal/cluster/primary.js, createWorkerProcess). cluster.fork
 * spawns synchronously, so process.execPath names the release's binary for
 * exactly that call and nothing else can observe it.
 */
function forkOn(execPath: string | undefined, env: Record<string, string>): ClusterWorker {
  if (execPath === undefined || execPath === process.execPath) return cluster.fork(env);
  const own = process.execPath;
  process.execPath = execPath;
  try {
    return cluster.fork(env);
  } finally {
    process.execPath = own;
  }
}

/**
 * Spares are forked when an operation ends (prepareSpares), or this long after
 * a launch outside one (a crash respawn), so they do not compete with boots.
 */
const SPARE_REFILL_DELAY_MS = 1000;
/** Spares that die before use this many times in a row: stop making them (something is wrong with the runtime). */
const MAX_SPARE_FAILURES = 3;

/**
 * Forks workers with node:cluster, and keeps `spares()` processes booted
 * ahead of time: Node started, the worker runtime loaded, no app. Launching
 * hands the release to a spare when there is one, so a new worker skips
 * Node's start-up (about 100 ms on a small VM, several times that on a busy
 * one) and is ready as soon as the app listens. That is most of an upgrade's
 * cutover time. Spares are refilled when the operation ends.
 */
export class ClusterLauncher implements Launcher {
  private configured = false;
  private readonly idle: ClusterWorker[] = [];
  /** Spares that said they are listening for the run message (one sent earlier would be lost). */
  private readonly waiting = new WeakSet<ClusterWorker>();
  private refill: NodeJS.Timeout | undefined;
  private closed = false;
  private failures = 0;

  constructor(private readonly wantedSpares: () => number = () => 0) {}

  spares(): number {
    return this.idle.filter((spare) => this.waiting.has(spare) && !spare.isDead()).length;
  }

  launch(spec: LaunchSpec): WorkerProcess {
    this.configure();
    const env = {
      [WorkerEnv.target]: spec.target,
      [WorkerEnv.generation]: String(spec.generation),
      [WorkerEnv.readyMode]: spec.readyMode,
    };
    // Spares run the master's own Node: a release on another binary forks its own.
    const spare = spec.execPath === undefined ? this.takeSpare() : undefined;
    let worker: ClusterWorker;
    if (spare) {
      worker = spare;
      const run = () => worker.send({ liveswap: 'run', env } as never);
      // A spare still booting is further along than a fresh fork: hand it the
      // release as soon as it listens for it.
      if (this.waiting.has(spare)) run();
      else spare.on('message', (message: unknown) => isSpareMessage(message) && run());
    } else {
      worker = forkOn(spec.execPath, env);
    }
    this.scheduleRefill();
    return new ClusterWorkerProcess(worker);
  }

  prepareSpares(): void {
    if (this.closed || !this.configured) return;
    clearTimeout(this.refill);
    this.fillSpares();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.refill);
    for (const spare of this.idle.splice(0)) spare.process.kill('SIGKILL');
  }

  private configure(): void {
    if (this.configured) return;
    // silent: the master reads worker output to prefix it and keep its tail.
    cluster.setupPrimary({ exec: WORKER_ENTRY, args: [], silent: true });
    this.configured = true;
  }

  /**
   * An idle spare still alive and connected, ready ones first, then one still
   * booting. Exit events are async, so none can fire before the caller
   * attaches its own.
   */
  private takeSpare(): ClusterWorker | undefined {
    const alive = (spare: ClusterWorker) => !spare.isDead() && spare.isConnected();
    let index = this.idle.findIndex((spare) => this.waiting.has(spare) && alive(spare));
    if (index === -1) index = this.idle.findIndex(alive);
    return index === -1 ? undefined : this.idle.splice(index, 1)[0];
  }

  private scheduleRefill(): void {
    if (this.closed || this.failures >= MAX_SPARE_FAILURES) return;
    clearTimeout(this.refill);
    this.refill = setTimeout(() => this.fillSpares(), SPARE_REFILL_DELAY_MS);
    this.refill.unref();
  }

  private fillSpares(): void {
    while (!this.closed && this.failures < MAX_SPARE_FAILURES && this.idle.length < this.wantedSpares()) {
      let spare: ClusterWorker;
      try {
        spare = forkOn(undefined, { [WorkerEnv.spare]: '1' });
      } catch {
        // The OS refused (ENOMEM…): spares are only a head start, so no worse than one that died.
        this.failures++;
        this.scheduleRefill();
        return;
      }
      this.idle.push(spare);
      // Drain its pipes: nothing is expected there, and a full pipe would block it.
      spare.process.stdout?.resume();
      spare.process.stderr?.resume();
      const lost = () => {
        const index = this.idle.indexOf(spare);
        if (index === -1) return; // launched: its exit is the pool's business
        this.idle.splice(index, 1);
        if (!this.closed) {
          this.failures++;
          this.scheduleRefill();
        }
      };
      spare.once('exit', lost);
      // A spare never created (the spawn failed after fork returned: EAGAIN…) has only this error, no exit.
      spare.on('error', () => {
        if (spare.process.pid === undefined) lost();
      });
      spare.on('message', (message: unknown) => {
        if (isSpareMessage(message)) {
          this.waiting.add(spare);
          this.failures = 0;
        }
      });
    }
  }
}
