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
import { isAddressMessage, isReadyMessage, WorkerEnv } from '../ipc.js';
import { forEachLine } from './output.js';

/**
 * listening: ready once a server listens (in an upgrade: on every address the
 * old workers share); first-listen: once any server listens, whatever the old
 * workers served (a release that moves or drops a port); message: on
 * `process.send({ liveswap: 'ready' })`.
 */
export type ReadyMode = 'listening' | 'first-listen' | 'message';

export interface LaunchSpec {
  target: string;
  generation: number;
  readyMode: ReadyMode;
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
  launch(spec: LaunchSpec): WorkerProcess;
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
    // Errors on the IPC channel (EPIPE after the worker died) are expected.
    worker.on('error', () => {});
    worker.once('exit', (code, signal) => {
      exitStatus = [code, signal as NodeJS.Signals | null];
      if (openStreams === 0) report();
      // A grandchild may hold the pipes open; do not wait for it forever.
      else setTimeout(report, STDIO_CLOSE_GRACE_MS).unref();
    });
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

export class ClusterLauncher implements Launcher {
  private configured = false;

  launch(spec: LaunchSpec): WorkerProcess {
    if (!this.configured) {
      // silent: the master reads worker output to prefix it and keep its tail.
      cluster.setupPrimary({ exec: WORKER_ENTRY, args: [], silent: true });
      this.configured = true;
    }
    const worker = cluster.fork({
      [WorkerEnv.target]: spec.target,
      [WorkerEnv.generation]: String(spec.generation),
      [WorkerEnv.readyMode]: spec.readyMode,
    });
    return new ClusterWorkerProcess(worker);
  }
}
